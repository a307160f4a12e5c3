"""Loopback helpers shared by the test suites' conftest files: free ports, a Mosquitto process."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

#: below Linux's ephemeral range (32768-60999), where the kernel also picks the local port of every
#: outgoing connection: a port found free there could be taken by a client before the test's server
#: binds it
_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port free now and not handed out before in this process. The suite runs on every
    core (pytest-xdist), so each worker draws from its own slice of ``_PORTS``: two workers never
    pick the same port between one's check and its server's bind."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ...; serially the whole range
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    ports = _PORTS[int(worker.removeprefix("gw")) % workers::workers]
    for port in random.sample(ports, len(ports)):
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port left in {ports}")


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class MosquittoProcess:
    """A Mosquitto running a given config file; stop/start keep its port, so clients reconnect."""

    def __init__(self, config: Path, port: int) -> None:
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.exe).exists():
            raise RuntimeError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.config, self.port = config, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.config)])
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
