"""A real ``instore cloud serve`` process on a free loopback port, for attacks on the HTTP server itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.netutil import free_port

REPO = Path(__file__).resolve().parents[2]


class CloudProcess:
    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.db, self.port = db, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_suffix(".log")
        self.args = [sys.executable, "-m", "provisioning", "cloud", "serve", "--db", str(db), "--port", str(self.port),
                     *args]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INSTORE_") or k == "INSTORE_MODELS"}
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run to its end (a refused start)."""
        return subprocess.run(self.args, env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout)

    def start(self, timeout: float = 60) -> CloudProcess:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cloud serve exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"cloud serve did not answer within {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
