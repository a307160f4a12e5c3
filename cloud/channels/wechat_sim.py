"""A local WeChat server for subscribe messages: ``/cgi-bin/token`` and ``/cgi-bin/message/subscribe/send``
in the real request and answer shape. ``.subscriptions[(openid, template)]`` counts what each member
accepted (a one-time subscription is used up by one message; none left answers 43101)."""

from __future__ import annotations

import json
import secrets
import threading
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from cloud.channels.simulated_server import JsonHandler, SimulatedServer


class SimulatedWeChat:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, appid: str = "wx-sim", secret: str = "s") -> None:
        self.appid, self.secret = appid, secret
        self.tokens: set[str] = set()
        self.sent: list[dict] = []
        self.subscriptions: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        owner = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/cgi-bin/token":
                    if q.get("appid") != owner.appid or q.get("secret") != owner.secret:
                        self.answer({"errcode": 40013, "errmsg": "invalid appid"})
                        return
                    token = secrets.token_hex(16)
                    owner.tokens.add(token)
                    self.answer({"access_token": token, "expires_in": 7200})
                    return
                self.answer({"errcode": 404, "errmsg": "not found"})

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.answer({"errcode": 47001, "errmsg": "data format error"})
                    return
                if url.path != "/cgi-bin/message/subscribe/send":
                    self.answer({"errcode": 404, "errmsg": "not found"})
                elif q.get("access_token") not in owner.tokens:
                    self.answer({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
                else:
                    self.answer(owner.handle(body))

        self._server = SimulatedServer((host, port), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"

    def handle(self, body: dict) -> dict:
        if not body.get("touser") or not body.get("template_id") or not isinstance(body.get("data"), dict):
            return {"errcode": 47003, "errmsg": "argument invalid! data.thing1.value is empty"}
        if body.get("miniprogram_state", "formal") not in ("formal", "trial", "developer"):
            return {"errcode": 47003, "errmsg": "argument invalid! miniprogram_state"}
        key = (body["touser"], body["template_id"])
        with self._lock:
            if self.subscriptions[key] <= 0:
                return {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
            self.subscriptions[key] -= 1
            self.sent.append(body)
            msgid = len(self.sent)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def start(self) -> SimulatedWeChat:
        threading.Thread(target=self._server.serve_forever, name="wechat-sim", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
