"""The fleet's cloud: a fresh PostgreSQL database, several ingest processes and one API process.

Every process is the product's own ``instore cloud serve`` (``python -m provisioning cloud serve``):
the ingest processes share the device events through the MQTT share group ``cdp`` (each with a
persistent session on the broker's service listener, as the cloud's certificate), the API
process has no broker. Each can be killed and restarted by role name; ``ResourceSampler`` reads
their CPU and memory with psutil.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import psutil

from tests.netutil import free_port

PG_SERVER = os.environ.get("INSTORE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
API_KEY = "fleet-" + uuid4().hex
SHARE_GROUP = "cdp"  # the only share group the generated broker ACL grants the cloud


class NoPostgres(RuntimeError):
    """No PostgreSQL server answers: the fleet needs one (several processes share the store)."""


def fresh_database(server: str = PG_SERVER) -> str:
    import psycopg

    name = f"instore_fleet_{uuid4().hex[:12]}"
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise NoPostgres(f"no PostgreSQL server at {server} ({exc})") from None
    return f"{server}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class CloudProcess:
    role: str  # "ingest-1", ..., "api"
    args: list[str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str], timeout: float = 90.0) -> None:
        self.spawn(env)
        self.wait_ready(timeout)

    def spawn(self, env: dict[str, str]) -> None:
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "provisioning", *self.args, "--port", str(self.port)],
                                         stdout=log, stderr=log, env=env, cwd=Path(__file__).resolve().parents[2])

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited during start; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.role} did not answer /healthz within {timeout:.0f} s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Cloud:
    def __init__(self, workdir: Path, db_url: str, broker_url: str, ingest_processes: int) -> None:
        self.db_url = db_url
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", INSTORE_API_KEY=API_KEY)
        common = ["cloud", "serve", "--db", db_url, "--rate-limit", "0"]
        self.processes = [
            # a stable client id per process: its broker session survives the process and the broker
            CloudProcess(f"ingest-{n}", [*common, "--broker", broker_url, "--share-group", SHARE_GROUP,
                                         "--client-id", f"fleet-ingest-{n}"],
                         free_port(), workdir / f"ingest-{n}.log")
            for n in range(1, ingest_processes + 1)
        ]
        self.processes.append(CloudProcess("api", common, free_port(), workdir / "api.log"))

    def start(self) -> None:
        # the first one runs the migrations alone; the others then start together
        self.processes[0].start(self.env)
        for process in self.processes[1:]:
            process.spawn(self.env)
        for process in self.processes[1:]:
            process.wait_ready(90)

    def get(self, role: str) -> CloudProcess:
        return next(p for p in self.processes if p.role == role)

    def kill_and_restart(self, role: str) -> None:
        """SIGKILL, as a crashed or evicted container, then start the same command again."""
        process = self.get(role)
        process.stop(signal.SIGKILL)
        process.restarts += 1
        process.start(self.env)

    def kill_ingests(self) -> list[CloudProcess]:
        """SIGKILL every ingest process (their broker sessions stay, and queue what comes)."""
        ingests = [p for p in self.processes if p.role.startswith("ingest")]
        for process in ingests:
            process.stop(signal.SIGKILL)
        return ingests

    def start_again(self, processes: list[CloudProcess]) -> None:
        for process in processes:
            process.restarts += 1
            process.spawn(self.env)
        for process in processes:
            process.wait_ready(90)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.get("api").url, headers={"X-API-Key": API_KEY}, timeout=60)

    def stop(self) -> None:
        for process in self.processes:
            if process.proc is not None and process.proc.poll() is None:
                process.proc.terminate()
        for process in self.processes:
            process.stop()


class ResourceSampler:
    """CPU (percent of one core) and RSS of each cloud process, sampled by the caller's clock."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self._handles: dict[str, psutil.Process] = {}
        self.samples: list[dict] = []

    def sample(self, t: float) -> dict:
        row: dict = {"t": round(t, 1)}
        for process in self.cloud.processes:
            if process.proc is None or process.proc.poll() is not None:
                continue
            handle = self._handles.get(process.role)
            if handle is None or handle.pid != process.proc.pid:
                handle = self._handles[process.role] = psutil.Process(process.proc.pid)
                handle.cpu_percent(None)  # the first reading only starts the clock
            try:
                row[process.role] = {"pid": handle.pid, "cpu": round(handle.cpu_percent(None), 1),
                                     "rss_mb": round(handle.memory_info().rss / 2**20, 1)}
            except psutil.NoSuchProcess:
                continue
        self.samples.append(row)
        return row
