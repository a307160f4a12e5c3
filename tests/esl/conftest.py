"""A fake OpenEPaperLink access point: a real HTTP server on loopback that checks and records
requests the way the AP firmware parses them (multipart ``/imgupload``, ``/led_flash`` query)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from provisioning.broker import free_port


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
class FakeAp:
    """Tags it knows by MAC; ``busy`` answers 409 "Come back later" that many times first."""

    port: int
    known_macs: set[str]
    uploads: list[Upload] = field(default_factory=list)
    flashes: list[Flash] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    busy: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ap = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def answer(self, status: int, text: str) -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/led_flash":
                    return self.answer(404, "")
                if query.get("mac") not in ap.known_macs:
                    return self.answer(400, "parameters are missing")
                pattern = query.get("pattern", "")
                if len(pattern) != 24 or any(c not in "0123456789ABCDEFabcdef" for c in pattern):
                    ap.errors.append(f"bad pattern {pattern!r}")
                    return self.answer(400, "Error: expects 12 hex bytes in pattern")
                ap.flashes.append(Flash(query["mac"], pattern))
                self.answer(200, "ok, request transmitted")

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/imgupload":
                    return self.answer(404, "")
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if ap.busy > 0:
                    ap.busy -= 1
                    return self.answer(409, "Come back later")
                head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
                if not message.is_multipart():
                    ap.errors.append("imgupload is not multipart")
                    return self.answer(400, "parameters incomplete")
                parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
                if "mac" not in parts or "file" not in parts:
                    ap.errors.append(f"imgupload fields {sorted(parts)}")
                    return self.answer(400, "parameters incomplete")
                mac = parts["mac"].get_content().strip()
                if mac not in ap.known_macs:
                    return self.answer(400, "mac not found")
                data = parts["file"].get_payload(decode=True)
                image = Image.open(io.BytesIO(data))
                if image.format != "JPEG" or image.info.get("progressive"):
                    ap.errors.append(f"image is {image.format}, progressive={image.info.get('progressive')}")
                    return self.answer(400, "baseline jpeg only")
                image.load()
                dither = parts["dither"].get_content().strip() if "dither" in parts else "1"
                ap.uploads.append(Upload(mac, dither, image))
                self.answer(200, "Ok, saved")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


MACS = {"0000021EA3B4C5D6", "0000021EA3B4C5D7", "0000021EA3B4C5D8"}


@pytest.fixture
def fake_ap() -> Iterator[FakeAp]:
    ap = FakeAp(free_port(), set(MACS))
    ap.start()
    yield ap
    ap.stop()


@pytest.fixture
def ap_port_unstarted() -> Iterator[FakeAp]:
    """An AP that is down until the test calls ``start``."""
    ap = FakeAp(free_port(), set(MACS))
    yield ap
    ap.stop()
