"""Issue 14, finding 7: image decompression bombs at enrolment, replayed over HTTP.

A 48 KB PNG declaring 20000x20000 took 2.6 GB and 20 s to decode; 40000x40000 gave a 500 (an
uncaught ``cv2.error``). Photos are now refused from their header, before any decoding, above
the pixel budget (413 ``image_too_large``); a format whose header is not read is refused
undecoded (422); decoding runs in a bounded number of slots (429 ``decoder_busy`` past the wait).
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

import resource
import struct
import time
import zlib
from pathlib import Path

import pytest

from cloud.faces import enrolment
from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)

FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"
MEMBER = {"name": "王芳", "phone": "13800138000", "consent": {"face": True}}


def _png_bomb(width: int, height: int) -> bytes:
    """A 1-bit greyscale PNG of zeros: tens of KB on the wire, width x height x 3 bytes once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real photo whose start-of-frame header claims another size."""
    photo = bytearray((FACES / "deepface_id01" / "img1.jpg").read_bytes())
    at = 2
    while photo[at] == 0xFF:  # walk the segments (an EXIF thumbnail holds markers of its own)
        marker, length = photo[at + 1], struct.unpack(">H", photo[at + 2:at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            photo[at + 5:at + 9] = struct.pack(">HH", height, width)
            return bytes(photo)
        at += 2 + length
    raise AssertionError("no SOF marker")


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("size", [(20000, 20000), (40000, 40000)])
def test_a_png_bomb_is_refused_from_its_header(start_cloud, size: tuple[int, int]) -> None:
    client, _ = start_cloud()
    member = client.post("/v1/members", json=MEMBER).json()["id"]
    bomb = _png_bomb(*size)
    assert len(bomb) < 512 * 1024
    peak, started = _max_rss_mb(), time.perf_counter()
    answer = client.post(f"/v1/members/{member}/faces", files={"image": ("bomb.png", bomb, "image/png")})
    seconds = time.perf_counter() - started
    assert answer.status_code == 413, answer.text
    assert answer.json()["detail"]["code"] == "image_too_large"
    assert seconds < 2 and _max_rss_mb() - peak < 100  # before: 20 s and 2.6 GB (or a 500)


def test_a_lying_jpeg_header_and_an_unread_format_are_refused_undecoded(start_cloud) -> None:
    client, _ = start_cloud()
    member = client.post("/v1/members", json=MEMBER).json()["id"]
    jpeg = client.post(f"/v1/members/{member}/faces", files={"image": ("x.jpg", _jpeg_claiming(30000, 30000))})
    assert jpeg.status_code == 413 and jpeg.json()["detail"]["code"] == "image_too_large"
    pfm = b"PF\n20000 20000\n-1.0\n" + b"\x00" * 1024  # OpenCV decodes PFM; its header is never trusted
    assert client.post(f"/v1/members/{member}/faces", files={"image": ("x.pfm", pfm)}).status_code == 422
    # a normal photo still enrols
    ok = client.post(f"/v1/members/{member}/faces",
                     files={"image": ("p.jpg", (FACES / "deepface_id01" / "img1.jpg").read_bytes())})
    assert ok.status_code == 201, ok.text


def test_decoding_is_bounded_in_concurrency(start_cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = start_cloud()
    member = client.post("/v1/members", json=MEMBER).json()["id"]
    monkeypatch.setattr(enrolment, "DECODE_WAIT_S", 0.2)
    photo = (FACES / "deepface_id01" / "img1.jpg").read_bytes()
    held = [enrolment._decoding.acquire(timeout=1) for _ in range(enrolment.DECODE_SLOTS)]  # every slot busy
    try:
        assert all(held)
        busy = client.post(f"/v1/members/{member}/faces", files={"image": ("p.jpg", photo)})
    finally:
        for _ in held:
            enrolment._decoding.release()
    assert busy.status_code == 429 and busy.json()["detail"]["code"] == "decoder_busy"
    assert client.post(f"/v1/members/{member}/faces", files={"image": ("p.jpg", photo)}).status_code == 201
