"""Local stand-ins for the providers alerts go out through, speaking their real shapes: WeCom's
gettoken, message/send and group-robot webhook/send; a webhook receiver that checks the HMAC
signature; and a minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)."""

from __future__ import annotations

import email
import json
import socketserver
import threading
from email import policy
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from cloud.channels.simulated_server import JsonHandler, SimulatedServer
from cloud.channels.webhook import verify


class Provider:
    """Records what it was sent; ``fail_next`` HTTP 500s and ``expire_tokens`` 42001s on demand."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.tokens_issued = 0
        self.expire_tokens = 0
        self.fail_next = 0
        self.app: list[dict] = []
        self.robot: list[dict] = []
        self.hooks: list[dict] = []
        self.bad_signatures = 0
        self.server = SimulatedServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = parse_qs(url.query)
                if url.path == "/cgi-bin/gettoken":
                    if q.get("corpid") != ["corp"] or q.get("corpsecret") != ["s3cret"]:
                        return self.answer({"errcode": 40001, "errmsg": "invalid credential"})
                    provider.tokens_issued += 1
                    return self.answer({"errcode": 0, "errmsg": "ok", "access_token": f"tok{provider.tokens_issued}",
                                        "expires_in": 7200})
                self.answer({"errcode": 404, "errmsg": "no such api"}, 404)

            def do_POST(self) -> None:
                url = urlparse(self.path)
                q = parse_qs(url.query)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if provider.fail_next:
                    provider.fail_next -= 1
                    return self.answer({"errcode": -1, "errmsg": "system busy"}, 500)
                if url.path == "/cgi-bin/message/send":
                    if provider.expire_tokens:
                        provider.expire_tokens -= 1
                        return self.answer({"errcode": 42001, "errmsg": "access_token expired"})
                    if q.get("access_token") != [f"tok{provider.tokens_issued}"]:
                        return self.answer({"errcode": 40014, "errmsg": "invalid access_token"})
                    body = json.loads(raw)
                    assert body["msgtype"] in ("text", "markdown") and body[body["msgtype"]]["content"]
                    provider.app.append(body)
                    return self.answer({"errcode": 0, "errmsg": "ok", "msgid": f"m{len(provider.app)}"})
                if url.path == "/cgi-bin/webhook/send":
                    body = json.loads(raw)
                    provider.robot.append({"key": q.get("key", [""])[0], **body})
                    return self.answer({"errcode": 0, "errmsg": "ok"})
                if url.path == "/hook":
                    if not verify(provider.secret, self.headers.get("X-Instore-Timestamp", ""), raw,
                                  self.headers.get("X-Instore-Signature", "")):
                        provider.bad_signatures += 1
                        return self.answer({"error": "bad signature"}, 401)
                    provider.hooks.append({"delivery": self.headers["X-Instore-Delivery"], **json.loads(raw)})
                    return self.answer({"ok": True})
                self.answer({"errcode": 404}, 404)

        return Handler


class SmtpServer:
    """Just enough SMTP to receive a message; ``messages`` holds (envelope to, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write((line + "\r\n").encode())

                say("220 localhost ESMTP test")
                rcpt: list[str] = []
                while True:
                    line = self.rfile.readline().decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        return
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        say("250 localhost")
                    elif verb == "MAIL":
                        rcpt = []
                        say("250 OK")
                    elif verb == "RCPT":
                        rcpt.append(line.split(":", 1)[1].strip().strip("<>"))
                        say("250 OK")
                    elif verb == "DATA":
                        say("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            lines.append(data[1:] if data.startswith(b"..") else data)
                        msg = email.message_from_bytes(b"".join(lines), policy=policy.default)
                        server.messages.append((rcpt, msg))  # type: ignore[arg-type]
                        say("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        say("250 OK")
                    elif verb == "QUIT":
                        say("221 Bye")
                        return
                    else:
                        say("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
