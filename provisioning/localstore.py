"""A whole store on one machine, each wing in its own process, talking only over MQTT and HTTP.

The demo and the end-to-end tests drive the product through its own commands (``instore cloud
serve``, ``instore kiosk``, ``instore edge run``) exactly as a store would run them, and read the
machine-readable JSON lines those commands print on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from provisioning.broker import free_port
from provisioning.samples import MemberSeed

if TYPE_CHECKING:
    from kiosk.label_gateway.simulated_ap import SimulatedAccessPoint

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """A wing failed to start or to finish; the message includes the tail of its log."""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Wing:
    """One running command; its JSON stdout lines are collected as they come."""

    name: str
    proc: subprocess.Popen[str]
    log_path: Path
    events: list[dict] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def start_reader(self) -> None:
        threading.Thread(target=self._read, name=f"{self.name}-stdout", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s printed a non-JSON line: %s", self.name, line.rstrip())
                continue
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    def wait_events(self, predicate, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.events) or self.proc.poll() is not None, timeout)

    def finish(self, timeout: float) -> None:
        """Wait for a one-shot command to exit; killed and reported if it takes longer."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise self.failure(f"did not finish within {timeout:.0f} s") from None

    def failure(self, what: str) -> StoreError:
        return StoreError(f"{self.name} {what} (exit {self.proc.poll()}); last log lines:\n{_tail(self.log_path)}")


class LocalStore:
    def __init__(self, broker_url: str, workdir: Path, *, brand: str = "demo", store: str = "store1",
                 share_group: str | None = None, headless: bool = True) -> None:
        self.broker_url = broker_url
        self.workdir = workdir
        self.db_path = workdir / "cloud.db"
        self.brand, self.store = brand, store
        self.share_group = share_group
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        if headless or not os.environ.get("DISPLAY"):
            self.env["QT_QPA_PLATFORM"] = "offscreen"
        self.api_url = ""
        self.wings: dict[str, Wing] = {}
        self.access_point: SimulatedAccessPoint | None = None  # once start_esl ran

    def _spawn(self, name: str, *args: str) -> Wing:
        log_path = self.workdir / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "provisioning", *args],
            stdout=subprocess.PIPE, stderr=log_path.open("w"), text=True, env=self.env,
        )
        wing = Wing(name, proc, log_path)
        wing.start_reader()
        self.wings[name] = wing
        return wing

    def start_history(self, *, stores: int, members: int, days: int, incidents: int) -> Wing:
        """Seed the cloud's database with a synthetic brand history (``instore cloud generate``):
        ``stores`` stores, this one among them under this brand, ``days`` days of shop floor up to
        now, rolled up and scanned, ``incidents`` of them with a device failure planted yesterday.
        Runs while the caller does other work; ``wait_history`` collects it before the cloud starts."""
        from cloud.runtime import open_cdp

        open_cdp(str(self.db_path)).close()  # the schema and the sample catalogue, as the cloud's first start writes them
        return self._spawn("history", "cloud", "generate", "--db", str(self.db_path), "--members", str(members),
                           "--stores", str(stores), "--floor-days", str(days), "--brand", self.brand,
                           "--store-id", self.store, "--incidents", str(incidents))

    def wait_history(self, timeout: float = 300.0) -> dict:
        """The generator's summary line (counts, planted incidents, rollup, alerts raised)."""
        wing = self.wings["history"]
        wing.finish(timeout)
        wing.wait_events(lambda ev: bool(ev), 5)
        if wing.proc.returncode != 0 or not wing.events:
            raise wing.failure("failed")
        return wing.events[-1]

    def start_cloud(self, timeout: float = 60.0) -> str:
        port = free_port()
        args = ["cloud", "serve", "--db", str(self.db_path), "--broker", self.broker_url, "--port", str(port)]
        if not self.env.get("INSTORE_API_KEY"):
            args.append("--dev-open-mode")  # a developer's own machine, loopback only: open, and it says so
        if self.share_group:
            args += ["--share-group", self.share_group]
        wing = self._spawn("cloud", *args)
        self.api_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wing.proc.poll() is not None:
                raise wing.failure("exited during start")
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200:
                    return self.api_url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise wing.failure(f"did not answer /healthz within {timeout:.0f} s")

    def _api(self) -> httpx.Client:
        headers = {"X-API-Key": self.env["INSTORE_API_KEY"]} if self.env.get("INSTORE_API_KEY") else {}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=30)

    def enrol(self, seed: MemberSeed, photo: Path, phone: str) -> str:
        with self._api() as api:
            created = api.post("/v1/members", json=seed.as_json(phone))
            created.raise_for_status()
            member_id = created.json()["id"]
            enrolled = api.post(f"/v1/members/{member_id}/faces", files={"image": (photo.name, photo.read_bytes())})
            if enrolled.status_code != 201:
                raise StoreError(f"enrolling {photo} failed: {enrolled.status_code} {enrolled.text}")
        return member_id

    def health_overview(self) -> dict[str, int]:
        """What HQ's dashboard opens on, read as any API client would: stores ranked, alerts open."""
        with self._api() as api:
            ranking = api.get("/v1/health/stores")
            ranking.raise_for_status()
            alerts = api.get("/v1/alerts", params={"status": "open", "limit": 1000})
            alerts.raise_for_status()
        return {"dashboard_stores": len(ranking.json()["stores"]), "open_alerts": len(alerts.json())}

    def visits(self, device: str | None = None) -> list[dict]:
        """The store's latest visits (newest first), only those ``device`` opened if given: a store
        seeded with history has thousands, and the demo counts its own edge box's."""
        with self._api() as api:
            response = api.get(f"/v1/stores/{self.store}/visits", params={"limit": 1000})
            response.raise_for_status()
            return [v for v in response.json() if device is None or v["device"] == device]

    def start_kiosk(self, screenshot: Path, screen: str = "main") -> Wing:
        wing = self._spawn("kiosk", "kiosk", "--store", self.store, "--brand", self.brand, "--broker", self.broker_url,
                           "--screen", screen, "--screenshot", str(screenshot))
        return wing

    def wait_kiosk_ready(self, timeout: float = 60.0) -> None:
        self.wait_ready("kiosk", timeout)

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        """The kiosk and the ESL gateway announce themselves with a ``ready`` line once subscribed."""
        wing = self.wings[name]
        if not wing.wait_events(lambda ev: any(e.get("event") == "ready" for e in ev), timeout) or wing.proc.poll() is not None:
            raise wing.failure("did not become ready")

    def start_esl(self, labels: Sequence[str], tag_type: str = "epd29_bwr") -> Wing:
        """The store's ESL gateway (``instore esl run``) against a simulated OpenEPaperLink access
        point on loopback: a demo machine has no AP, and the simulated one records each tag's
        uploads and flashes (``access_point.flashes``). Each label gets a made-up tag MAC."""
        from kiosk.label_gateway.simulated_ap import SimulatedAccessPoint

        book = [{"label": label, "mac": f"00000000DE{n:06X}", "tag_type": tag_type} for n, label in enumerate(labels)]
        access_point = SimulatedAccessPoint(free_port(), {entry["mac"] for entry in book})
        access_point.start()
        self.access_point = access_point
        path = self.workdir / "labels.json"
        path.write_text(json.dumps({"labels": book}))
        return self._spawn("esl", "esl", "run", "--store", self.store, "--brand", self.brand, "--broker",
                           self.broker_url, "--ap", access_point.url, "--labels", str(path))

    def label_recommended(self, member_ids: Sequence[str], labels: Sequence[str], tag_type: str = "epd29_bwr") -> dict[str, str]:
        """Hang the labels under the products the recommender picks most often for these members
        (the card preview route), registered in the cloud; label id -> sku."""
        picked: Counter[str] = Counter()
        with self._api() as api:
            for member_id in member_ids:
                response = api.get(f"/v1/members/{member_id}/recommendations", params={"store": self.store})
                response.raise_for_status()
                picked.update(item["sku"] for item in response.json()["items"])
            bound = dict(zip(labels, (sku for sku, _ in picked.most_common(len(labels)))))
            for label, sku in bound.items():
                api.put(f"/v1/stores/{self.store}/labels/{label}", json={"sku": sku, "tag_type": tag_type}).raise_for_status()
        return bound

    def run_edge(self, source: Path, device: str = "edge1", camera: str = "cam1", timeout: float = 600.0,
                 revisit_window_s: float = 0.0) -> Wing:
        """One pass of an edge box over ``source``; returns when every arrival was acknowledged.

        The re-visit window defaults to 0 here: sample frames are unrelated stills, and each one is
        meant to be its own visit. The box's state file (outbox, recent visits) lives in the workdir.
        """
        wing = self._spawn(f"edge-{device}", "edge", "run", "--store", self.store, "--brand", self.brand,
                           "--device", device, "--camera", camera, "--source", str(source),
                           "--broker", self.broker_url, "--once", "--revisit-window", str(revisit_window_s),
                           "--state", str(self.workdir / f"edge-{device}.db"))
        wing.finish(timeout)
        wing.wait_events(lambda ev: any(e.get("event") == "summary" for e in ev), 5)
        if wing.proc.returncode != 0:
            raise wing.failure("failed")
        return wing

    def stop(self) -> None:
        """Stop the kiosk first (it saves its screenshot on SIGTERM), then everything else."""
        for name in sorted(self.wings, key=lambda n: n != "kiosk"):
            proc = self.wings[name].proc
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.access_point is not None:
            self.access_point.stop()
