"""Issue 14, findings 2, 6, 10 and 14 (``/healthz``), replayed against a real ``instore cloud serve``.

2. Revoking the last API key opened the API to everyone as hq_admin. Now open mode exists only
   with ``--dev-open-mode`` on a loopback bind (with a loud warning) and only while no key has
   ever existed; after that, losing the last key locks the API until ``instore cloud create-key``.
6. Chunked uploads bypassed the Content-Length guard and bodies were read before the key was
   checked. Now the key is checked before a byte of body is read and bodies are counted while
   they stream.
10. Rate limiting was keyed on whatever key was sent; failed authentications are now limited per
    client address.
14. ``/healthz`` told anyone the enrolled-face count; without a key it says "ok" only.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud.api import auth
from cloud.runtime import open_cdp
from tests.security.cloudproc import REPO, CloudProcess

MB = 1024 * 1024


def _key(db: Path, name: str, role: str = "hq_admin") -> str:
    database = open_cdp(str(db), sample_catalogue=False)
    try:
        return auth.create_key(database, name=name, role=role).key  # type: ignore[arg-type]
    finally:
        database.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[CloudProcess]]:
    started: list[CloudProcess] = []
    yield started
    for process in started:
        process.stop()


def _serve(served: list[CloudProcess], db: Path, *args: str, **env: str) -> CloudProcess:
    process = CloudProcess(db, *args, env=env)
    served.append(process)
    return process.start()


def _stream(port: int, path: str, headers: dict[str, str], first: bytes, filler: bytes, *,
            give_up_after: int) -> tuple[int | None, int, float]:
    """POST a chunked body (``first``, then ``filler`` over and over) until the server answers or
    closes; the status (None: no answer), the body bytes sent, and the seconds it took."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port))
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked",
            *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent, answer = 0, b""
    chunks = [first]
    try:
        while sent < give_up_after:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                answer = sock.recv(65536)
                break
            if not writable:
                break
            chunk = chunks.pop() if chunks else filler
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        if not answer:
            sock.settimeout(10)
            answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        try:
            sock.settimeout(2)
            answer = sock.recv(65536)
        except OSError:
            pass
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, sent, time.monotonic() - started


def _multipart_head(boundary: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()


def test_losing_the_last_key_locks_the_api_and_open_mode_needs_the_flag_on_loopback(served, tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    # no flag, no key: a fresh server is locked, and /healthz tells a stranger nothing but "ok"
    locked = _serve(served, db)
    assert httpx.get(f"{locked.url}/v1/members").status_code == 401
    assert httpx.get(f"{locked.url}/healthz").json() == {"status": "ok"}
    locked.stop()

    # the flag on a non-loopback bind is refused at start
    refused = CloudProcess(db, "--dev-open-mode", "--host", "0.0.0.0").run()
    assert refused.returncode == 2 and "loopback" in refused.stderr

    # the flag on loopback: open while no key has ever existed, and it says so loudly
    dev = _serve(served, db, "--dev-open-mode")
    assert "DEVELOPMENT OPEN MODE" in dev.output()
    assert httpx.get(f"{dev.url}/v1/whoami").json()["role"] == "hq_admin"
    made = httpx.post(f"{dev.url}/v1/keys", json={"name": "Li Wei", "role": "hq_admin"}).json()
    li = {"X-API-Key": made["key"]}
    assert httpx.get(f"{dev.url}/v1/members").status_code == 401  # the first key closed it
    assert httpx.get(f"{dev.url}/v1/whoami", headers=li).json()["person"] == "Li Wei"
    # audits record the person behind the key
    saved = httpx.post(f"{dev.url}/v1/segments", headers=li, json={"name": "vip", "condition": {"lifecycle": ["active"]}})
    assert saved.status_code == 201 and "Li Wei" in saved.json()["created_by"]

    # the attack: revoke the last key, and the API stays locked (it used to open as hq_admin)
    assert httpx.delete(f"{dev.url}/v1/keys/{made['id']}", headers=li).status_code == 204
    for headers in ({}, li):
        answer = httpx.get(f"{dev.url}/v1/members", headers=headers)
        assert answer.status_code == 401 and answer.json()["detail"]["code"] == "unauthorized"
    assert httpx.get(f"{dev.url}/healthz").json() == {"status": "ok"}

    # recovery on the server itself
    created = subprocess.run([sys.executable, "-m", "provisioning", "cloud", "create-key", "--db", str(db),
                              "--name", "Wang Fang", "--role", "hq_admin"], cwd=REPO, env=dev.env,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    wang = {"X-API-Key": json.loads(created.stdout)["key"]}
    assert httpx.get(f"{dev.url}/v1/members", headers=wang).status_code == 200
    health = httpx.get(f"{dev.url}/healthz", headers=wang).json()
    assert health["faces"] == 0 and health["ingest"] == "off"


def test_a_stranger_is_refused_before_any_body_is_read(served, tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    _key(db, "Li Wei")
    cloud = _serve(served, db)
    before = cloud.rss_kb()
    boundary = "x" * 16
    # 1.5 GB of chunked multipart, then 400 MB of chunked JSON, both without a key
    form = _stream(cloud.port, "/v1/members/m1/faces", {"Content-Type": f"multipart/form-data; boundary={boundary}"},
                   _multipart_head(boundary), b"\xff" * MB, give_up_after=1536 * MB)
    body = _stream(cloud.port, "/v1/members", {"Content-Type": "application/json"},
                   b'{"name": "', b"a" * MB, give_up_after=400 * MB)
    for status, sent, seconds in (form, body):
        assert status == 401
        assert sent < 16 * MB and seconds < 5  # what the sockets buffer, not what the attacker has
    assert cloud.rss_kb() - before < 20 * 1024
    # a declared length over the limit is refused unread, key or not
    with socket.create_connection(("127.0.0.1", cloud.port)) as sock:
        sock.sendall(f"POST /v1/members HTTP/1.1\r\nHost: x\r\nContent-Length: {400 * MB}\r\n\r\n".encode())
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")


def test_a_key_holder_is_cut_off_at_the_limit_while_streaming(served, tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    key = {"X-API-Key": _key(db, "Li Wei")}
    cloud = _serve(served, db, INSTORE_MAX_UPLOAD_BYTES=str(MB))
    before = cloud.rss_kb()
    boundary = "y" * 16
    form = _stream(cloud.port, "/v1/members/m1/faces", {**key, "Content-Type": f"multipart/form-data; boundary={boundary}"},
                   _multipart_head(boundary), b"\xff" * (256 * 1024), give_up_after=1536 * MB)
    body = _stream(cloud.port, "/v1/members", {**key, "Content-Type": "application/json"},
                   b'{"name": "', b"a" * (256 * 1024), give_up_after=400 * MB)
    for status, sent, _ in (form, body):
        assert status == 413
        assert sent < MB + 16 * MB
    assert cloud.rss_kb() - before < 40 * 1024
    answer = httpx.post(f"{cloud.url}/v1/members", headers=key, content=(b"x" * 1024 for _ in range(8 * 1024)))
    assert answer.status_code == 413 and answer.json()["detail"]["code"] == "too_large"


def test_guessing_keys_is_limited_per_client_address(served, tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    good = {"X-API-Key": _key(db, "Li Wei")}
    cloud = _serve(served, db, INSTORE_AUTH_FAILURES_PER_MINUTE="5")
    # a fresh wrong key each time: the per-key buckets never filled, the address's does
    answers = [httpx.get(f"{cloud.url}/v1/members", headers={"X-API-Key": f"isk_guess{n}"}).status_code
               for n in range(8)]
    assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}
    refused = httpx.get(f"{cloud.url}/v1/members", headers={"X-API-Key": "isk_guess-more"})
    assert refused.json()["detail"]["code"] == "auth_rate_limited" and int(refused.headers["Retry-After"]) >= 1
    # /healthz is no way around it (it would be a key oracle); while the address is blocked no key is looked at
    assert httpx.get(f"{cloud.url}/healthz", headers={"X-API-Key": "isk_guess-x"}).status_code == 429
    assert httpx.get(f"{cloud.url}/v1/members", headers=good).status_code == 429
