"""A local simulated SMS provider speaking Aliyun's SendSms: what the tests and the demo send to.

``SimulatedSms().start()`` serves on a free loopback port (``.url``); every message it accepts is
kept in ``.sent`` (phone, sign name, template, params, out id) and readable at ``GET /messages``.
It answers like the real service: ``Code`` ``OK`` with a ``BizId`` and ``RequestId``, or an
error code (``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.BUSINESS_LIMIT_CONTROL`` past ``per_phone_per_minute``
messages to one phone, ``MissingParameter``). ``python -m cloud.channels.sms_sim --port 8025`` runs one.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_REQUIRED = ("PhoneNumbers", "SignName", "TemplateCode")


@dataclass
class SentSms:
    phone: str
    sign_name: str
    template: str
    params: dict
    out_id: str | None
    biz_id: str
    ts: float = field(default_factory=time.time)


class SimulatedSms:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, per_phone_per_minute: int = 5) -> None:
        self.sent: list[SentSms] = []
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._limit = per_phone_per_minute
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _answer(self, body: object, status: int = 200) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path.rstrip("/") == "/messages":
                    with owner._lock:
                        self._answer([m.__dict__ for m in owner.sent])
                    return
                self._answer(owner.handle(dict(parse_qsl(url.query))))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(min(length, 65536)).decode("utf-8", "replace")))
                form.update(parse_qsl(urlsplit(self.path).query))
                self._answer(owner.handle(form))

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread: threading.Thread | None = None

    def handle(self, params: dict[str, str]) -> dict:
        request_id = str(uuid.uuid4()).upper()
        missing = [name for name in _REQUIRED if not params.get(name)]
        if missing:
            return {"Code": "MissingParameter", "Message": f"{missing[0]} is mandatory", "RequestId": request_id}
        phone = params["PhoneNumbers"]
        if not _MOBILE.match(phone):
            return {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": phone, "RequestId": request_id}
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return {"Code": "isv.INVALID_JSON_PARAM", "Message": "TemplateParam", "RequestId": request_id}
        now = time.time()
        with self._lock:
            recent = self._recent[phone]
            while recent and recent[0] < now - 60:
                recent.popleft()
            if len(recent) >= self._limit:
                return {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:5",
                        "RequestId": request_id}
            recent.append(now)
            biz_id = f"{int(now * 1000)}^{uuid.uuid4().int % 10**10}"
            self.sent.append(SentSms(phone, params["SignName"], params["TemplateCode"], template_params,
                                     params.get("OutId"), biz_id))
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}

    def messages_to(self, phone: str) -> list[SentSms]:
        with self._lock:
            return [m for m in self.sent if m.phone == phone]

    def start(self) -> SimulatedSms:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sms-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    sim = SimulatedSms(args.host, args.port)
    print(f"simulated SMS provider on {sim.url}", flush=True)
    try:
        sim._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
