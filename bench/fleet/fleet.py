"""Start a fleet, run it for a while (optionally under faults), stop it and collect what happened."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.fleet.broker import FleetBroker, SysMonitor
from bench.fleet.chaos import ChaosLog, ChaosRunner, Fault
from bench.fleet.cloud import Cloud, ResourceSampler, drop_database, fresh_database
from bench.fleet.faces import Person, load_people
from bench.fleet.proxy import ProxyLoop, StoreLink
from bench.fleet.screen import GuideScreen
from protocol.facepack import get_pack
from provisioning import dynsec
from provisioning import fleet as provisioning
from provisioning.samples import MEMBER_SEEDS
from tests.netutil import free_port

log = logging.getLogger(__name__)

BRAND = "fleet"
REPO = Path(__file__).resolve().parents[2]
EDGE, KIOSK = "edge1", "kiosk-main"
#: Every fault a chaos run can do, in the order they come (see ``Fleet._faults``).
FAULTS = ("broker_kill", "cut", "late_device", "ingest_api_kill", "ingest_down_broker_restart", "edge_kill")


@dataclass(frozen=True)
class FleetOptions:
    stores: int = 5
    cameras: int = 4
    minutes: float = 2.0
    rate: float = 0.05  # arrivals per second per camera
    ingest: int = 3  # ingest processes in the share group
    members: int = 8  # people enrolled (the others are visitors)
    chaos: bool = False
    cut_s: float = 300.0  # how long the cut store stays offline
    broker_signal: int = signal.SIGKILL
    ingest_down_s: float = 10.0  # how long every ingest stays down around the broker's restart
    late_refused_s: float = 3.0  # how long the late device stays refused (after its first refusal) before it is added
    sample_s: float = 5.0
    faults: tuple[str, ...] | None = None  # names from FAULTS; None: all of them
    keep: bool = False  # keep the work folder and database afterwards
    pack: str | None = None


@dataclass
class EdgeProcess:
    store: str
    args: list[str]
    log_path: Path
    out_path: Path
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def start(self) -> None:
        with self.out_path.open("a") as out, self.log_path.open("a") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.fleet.edge_sim", *self.args], stdout=out, stderr=err, cwd=REPO)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.kills += 1


@dataclass
class FleetRun:
    options: FleetOptions
    workdir: Path
    started: float = 0.0
    ended: float = 0.0
    members: dict[str, str] = field(default_factory=dict)  # member id -> person label
    edges: dict[str, EdgeProcess] = field(default_factory=dict)
    screens: dict[str, GuideScreen] = field(default_factory=dict)
    links: dict[str, StoreLink] = field(default_factory=dict)
    resources: list[dict] = field(default_factory=list)
    broker_samples: list[dict] = field(default_factory=list)
    chaos: ChaosLog = field(default_factory=ChaosLog)
    db_url: str = ""
    edge_exit: dict[str, int | None] = field(default_factory=dict)


class Fleet:
    def __init__(self, options: FleetOptions) -> None:
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="instore-fleet-"))
        self.run_ = FleetRun(options, self.workdir)
        self.pack = get_pack(options.pack)
        self.people: list[Person] = []
        self.broker: FleetBroker | None = None
        self.sys: SysMonitor | None = None
        self.cloud: Cloud | None = None
        self.proxies: ProxyLoop | None = None
        self.stores = [f"s{n:03d}" for n in range(1, options.stores + 1)]
        self.late_stores: list[str] = []  # stores whose box was added to the running broker by a fault

    # --- setup ------------------------------------------------------------------------------------

    def setup(self) -> None:
        self.people = load_people(self.pack.id)
        self.broker = FleetBroker(self.workdir, BRAND)
        home = self.broker.home
        for store in self.stores:  # as a technician would: instore provision store/device create, bundle
            provisioning.create_store(home, store)
            provisioning.create_device(home, store, EDGE, "edge", model_pack=self.pack.id)
            provisioning.create_device(home, store, KIOSK, "kiosk")
            provisioning.write_store_bundles(home, store)
        provisioning.write_bundle(home, provisioning.CLOUD_SERVICE)
        self.broker.configure()
        self.broker.start()
        self.sys = SysMonitor(self.broker.admin_url)
        self.run_.db_url = fresh_database()
        self.cloud = Cloud(self.workdir, self.run_.db_url, self.broker.cloud_url, self.options.ingest)
        self.cloud.start()
        self._enrol()
        self.proxies = ProxyLoop()
        for store in self.stores:
            link = self.run_.links[store] = StoreLink(self.proxies, free_port(), self.broker.port)
            link.up()
            screen = self.run_.screens[store] = GuideScreen(self.broker.device_url(store, KIOSK, link.port), BRAND, store)
            screen.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(s.connects for s in self.run_.screens.values()):
            time.sleep(0.2)
        time.sleep(1.0)  # SUBACKs

    def _enrol(self) -> None:
        """The first ``members`` people become members with their first photo; the rest are visitors."""
        assert self.cloud is not None
        with self.cloud.api() as api:
            for n, person in enumerate(self.people[: self.options.members]):
                seed = MEMBER_SEEDS[n % len(MEMBER_SEEDS)]
                created = api.post("/v1/members", json=seed.as_json(f"139{n:08d}"))
                created.raise_for_status()
                member_id = created.json()["id"]
                photo = person.photos[0]
                enrolled = api.post(f"/v1/members/{member_id}/faces", files={"image": (photo.name, photo.read_bytes())})
                if enrolled.status_code != 201:
                    raise RuntimeError(f"enrolling {photo.parent.name}/{photo.name}: {enrolled.status_code} {enrolled.text}")
                self.run_.members[member_id] = person.label

    def _edge(self, store: str, until: float) -> EdgeProcess:
        assert self.broker is not None
        link = self.run_.links.get(store)  # the late store's box connects straight to the broker
        url = self.broker.device_url(store, EDGE, link.port if link else None)
        args = ["--brand", BRAND, "--store", store, "--device", EDGE, "--broker", url,
                "--state", str(self.workdir / f"{store}.db"),
                "--log", str(self.workdir / f"{store}.arrivals.jsonl"), "--until", str(until),
                "--rate", str(self.options.rate), "--cameras", str(self.options.cameras), "--pack", self.pack.id]
        return EdgeProcess(store, args, self.workdir / f"{store}.edge.log", self.workdir / f"{store}.edge.out")

    # --- faults -------------------------------------------------------------------------------------

    def _faults(self, duration: float) -> list[Fault]:
        assert self.broker is not None and self.cloud is not None
        broker, cloud, chaos = self.broker, self.cloud, self.run_.chaos
        cut_store = self.stores[min(2, len(self.stores) - 1)]
        killed_store = self.stores[min(1, len(self.stores) - 1)]
        cut_at = 0.15 * duration

        def restart_broker() -> None:
            start = time.time()
            broker.kill_and_restart(self.options.broker_signal)
            chaos.disrupted(self.stores, start, time.time() + 5)

        def restart_ingest_and_api() -> None:
            start = time.time()
            cloud.kill_and_restart("ingest-1")
            cloud.kill_and_restart("api")
            chaos.windows.append((start, time.time() + 5))

        def kill_edge() -> None:
            edge = self.run_.edges[killed_store]
            edge.kill()
            time.sleep(3)
            edge.start()
            chaos.windows.append((time.time() - 3, time.time() + 5))

        def cut() -> None:
            self.run_.links[cut_store].cut()

        def restore() -> None:
            self.run_.links[cut_store].up()
            chaos.disrupted([cut_store], self.started + cut_at, time.time() + 5)

        def restart_broker_with_ingest_down() -> None:
            """Issue 14, finding 3: what is queued for the offline ingest sessions survives the restart."""
            start = time.time()
            ingests = cloud.kill_ingests()
            time.sleep(self.options.ingest_down_s / 2)  # arrivals queue in the ingests' persistent sessions
            broker.kill_and_restart(signal.SIGTERM)  # the operator's restart (a revocation used to need one)
            time.sleep(self.options.ingest_down_s / 2)
            cloud.start_again(ingests)
            chaos.disrupted(self.stores, start, time.time() + 5)

        def add_device_live() -> None:
            """Issue 14, findings 4 and 5: a box installed before the broker knows it loses nothing,
            and is added to the running broker without a restart."""
            start = time.time()
            home = broker.home
            provisioning.create_store(home, late_store)
            provisioning.create_device(home, late_store, EDGE, "edge", model_pack=self.pack.id)
            provisioning.write_store_bundles(home, late_store)
            edge = self.run_.edges[late_store] = self._edge(late_store, self.started + duration)
            edge.start()
            self.late_stores.append(late_store)  # its arrivals count from the first one
            # the broker refuses its arrivals (PUBACK 0x87) and its outbox keeps them: wait until it did
            log_path, deadline = edge.log_path, time.monotonic() + 90
            while time.monotonic() < deadline and "broker refused" not in (log_path.read_text() if log_path.exists() else ""):
                time.sleep(0.5)
            time.sleep(self.options.late_refused_s)
            result = dynsec.sync(home, home.load(), dynsec.admin_url(home, home.load()))
            if f"CN={EDGE},OU={late_store},O={BRAND}" not in result.created:
                raise RuntimeError(f"the live sync did not add the late box: {result}")
            chaos.windows.append((start, time.time() + 10))

        late_store = f"s{len(self.stores) + 1:03d}"
        faults = {
            "broker_kill": Fault("broker killed and restarted", 0.1 * duration, restart_broker),
            "cut": Fault(f"store {cut_store} cut off for {self.options.cut_s:.0f} s", cut_at, cut),
            "late_device": Fault(f"edge box of new store {late_store} started before the broker knew it, added live "
                                 "once refused", 0.25 * duration, add_device_live),
            "ingest_api_kill": Fault("ingest-1 and api killed and restarted", 0.3 * duration, restart_ingest_and_api),
            "ingest_down_broker_restart": Fault(
                f"every ingest down {self.options.ingest_down_s:.0f} s, broker restarted (SIGTERM) meanwhile",
                0.45 * duration, restart_broker_with_ingest_down),
            "edge_kill": Fault(f"edge box of {killed_store} killed mid-replay and restarted", 0.6 * duration, kill_edge),
        }
        chosen = [faults[name] for name in (self.options.faults or FAULTS)]
        if "cut" in (self.options.faults or FAULTS):
            chosen.append(Fault(f"store {cut_store} link restored", cut_at + self.options.cut_s, restore))
        return chosen

    # --- running ----------------------------------------------------------------------------------

    def run(self) -> FleetRun:
        assert self.cloud is not None and self.sys is not None
        duration = self.options.minutes * 60
        self.started = self.run_.started = time.time()
        until = self.started + duration
        for store in self.stores:
            edge = self.run_.edges[store] = self._edge(store, until)
            edge.start()
        runner = ChaosRunner(self._faults(duration), self.started) if self.options.chaos else None
        if runner is not None:
            self.run_.chaos.faults = runner.faults
            runner.start()
        sampler = ResourceSampler(self.cloud)
        while time.time() < until or (runner is not None and runner.is_alive()):
            t = time.time() - self.started
            sampler.sample(t)
            self.run_.broker_samples.append({"t": round(t, 1), **self.sys.sample()})
            time.sleep(self.options.sample_s)
        self.run_.ended = time.time()
        self._drain()
        self.run_.resources = sampler.samples
        return self.run_

    def _drain(self) -> None:
        """Let every box flush its outbox and exit, then give the cloud and screens time to finish."""
        for store, edge in self.run_.edges.items():
            assert edge.proc is not None
            try:
                self.run_.edge_exit[store] = edge.proc.wait(180)
            except subprocess.TimeoutExpired:
                edge.proc.kill()
                self.run_.edge_exit[store] = None
        time.sleep(5)

    def close(self) -> None:
        for screen in self.run_.screens.values():
            screen.stop()
        for edge in self.run_.edges.values():
            if edge.proc is not None and edge.proc.poll() is None:
                edge.proc.kill()
        if self.sys is not None:
            self.sys.close()
        if self.cloud is not None:
            self.cloud.stop()
        if self.proxies is not None:
            self.proxies.close()
        if self.broker is not None:
            self.broker.stop()
        if self.run_.db_url and not self.options.keep:
            drop_database(self.run_.db_url)

    def write(self, name: str, data: object) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(data, indent=1, default=str))
        return path
