"""The HTTP server under the simulated providers (SMS, WeChat, and the alert channels in the tests).

A listen backlog of a real gateway, not socketserver's 5: the campaign sender opens one connection
per thread (16) at once, and on a busy machine the accept loop lags; past 5 queued connections the
kernel answers with SYN cookies and resets those whose cookie fails, so a sender saw
``ConnectionResetError`` on fresh connections (a send retried 20 s later, not in the same run).
docs/ACTIVATION.md has the burst figures."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SimulatedServer(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


class JsonHandler(BaseHTTPRequestHandler):
    """Every simulated provider answers in JSON and keeps the test output quiet; each subclasses
    this with its own ``do_GET``/``do_POST`` speaking its provider's routes."""

    def log_message(self, *args: object) -> None:
        pass

    def answer(self, body: object, status: int = 200) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
