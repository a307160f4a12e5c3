"""A simulated OpenEPaperLink access point: a real HTTP server on loopback that accepts and
checks the gateway's requests the way the AP firmware parses them, and records what each tag
would have shown or blinked. It drives no radio and no tag.

For the demo (a store on one machine, without an AP) and the gateway's tests. Requests are parsed
as the firmware does (``ESP32_AP-Flasher/src/web.cpp``): ``POST /imgupload`` multipart with
``mac``, ``dither`` and a baseline JPEG ``file``; ``GET /led_flash?mac=…&pattern=…`` with 12 hex
bytes. Unknown MACs get ``400`` and ``busy`` answers ``409 Come back later`` that many times, as
the firmware does while it is busy. Anything the firmware would refuse is also listed in
``errors``, so a test can say why.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image

log = logging.getLogger(__name__)


@dataclass
class Upload:
    mac: str
    dither: str
    image: Image.Image


@dataclass
class Flash:
    mac: str
    pattern: str


@dataclass
class SimulatedAccessPoint:
    """Tags it knows by MAC (16 hex digits, as ``kiosk.label_gateway.ap.normalize_mac`` makes them)."""

    port: int
    known_macs: set[str]
    host: str = "127.0.0.1"
    uploads: list[Upload] = field(default_factory=list)
    flashes: list[Flash] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    busy: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self.server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        threading.Thread(target=self.server.serve_forever, name="simulated-ap", daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # what the firmware does with each request

    def led_flash(self, query: dict[str, str]) -> tuple[int, str]:
        if query.get("mac") not in self.known_macs:
            return 400, "parameters are missing"
        pattern = query.get("pattern", "")
        if len(pattern) != 24 or any(c not in "0123456789ABCDEFabcdef" for c in pattern):
            self.errors.append(f"bad pattern {pattern!r}")
            return 400, "Error: expects 12 hex bytes in pattern"
        self.flashes.append(Flash(query["mac"], pattern))
        log.info("simulated AP: tag %s flashes pattern %s", query["mac"], pattern)
        return 200, "ok, request transmitted"

    def imgupload(self, content_type: str, body: bytes) -> tuple[int, str]:
        if self.busy > 0:
            self.busy -= 1
            return 409, "Come back later"
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            self.errors.append("imgupload is not multipart")
            return 400, "parameters incomplete"
        parts = {str(p.get_param("name", header="content-disposition")): p for p in message.iter_parts()}
        if "mac" not in parts or "file" not in parts:
            self.errors.append(f"imgupload fields {sorted(parts)}")
            return 400, "parameters incomplete"
        mac = parts["mac"].get_content().strip()
        if mac not in self.known_macs:
            return 400, "mac not found"
        payload = parts["file"].get_payload(decode=True)
        if not isinstance(payload, bytes):
            self.errors.append("imgupload file part has no body")
            return 400, "parameters incomplete"
        image = Image.open(io.BytesIO(payload))
        if image.format != "JPEG" or image.info.get("progressive"):
            self.errors.append(f"image is {image.format}, progressive={image.info.get('progressive')}")
            return 400, "baseline jpeg only"
        image.load()
        dither = parts["dither"].get_content().strip() if "dither" in parts else "1"
        self.uploads.append(Upload(mac, dither, image))
        log.info("simulated AP: tag %s shows a %dx%d image", mac, *image.size)
        return 200, "Ok, saved"


def _handler(ap: SimulatedAccessPoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/led_flash":
                return self.answer(404, "")
            self.answer(*ap.led_flash({k: v[0] for k, v in parse_qs(url.query).items()}))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/imgupload":
                return self.answer(404, "")
            self.answer(*ap.imgupload(self.headers.get("Content-Type", ""), body))

    return Handler
