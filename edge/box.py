"""The edge box: its cameras' workers, the outbox and publisher, telemetry and remote config.

Every arrival goes to the on-disk outbox first (and to the caller's ``on_arrival``, which prints
it), in the order the cameras produce them; so do the presence and footfall messages of the
optional Wi-Fi source, which runs in a thread of its own (``edge.wifi.runner``). The main thread
does the slow, rare things: a telemetry report every ``telemetry_interval_s`` (and, from a
bundle, a daily certificate expiry warning) and applying a desired configuration from the cloud,
which is validated as a whole and either fully applied or refused with the reason in
``cfg/reported``. Thresholds change from the next frame; a camera whose spec changed is restarted.
A ``cmd/pack`` command (a staged rollout) switches the model pack the same way: verified as at
start-up, loaded beside the running one, swapped in between frames, acknowledged either way.
Every refused configuration or command is also counted by its reason in the box's telemetry
(``commands_refused``), so a fleet view shows a box being sent junk without reading its log.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge.camera import CameraWorker
from edge.config import EdgeConfig
from edge.crop import EXPIRY_S, crop_topic, face_crop
from edge.install import certificate_expiry, verify_pack
from edge.outbox import Outbox
from edge.pipeline import ArrivalEvent, FacePipeline
from edge.placement import Placement
from edge.publisher import Publisher
from edge.state import StateFile
from edge.telemetry import Health
from edge.visits import VisitRegistry
from edge.wifi.runner import WifiRunner
from protocol import topics, transport
from protocol.bundle import Bundle
from protocol.codec import DecodeError, decode
from protocol.commands import ERASE, PACK, CommandAck, EraseCommand, PackCommand
from protocol.device import CameraSpec, ConfigDesired, ConfigReported, RemoteSettings
from protocol.facepack import ModelPack, PackError, get_pack, require_commercial
from protocol.facepack.engine import FaceEngine
from protocol.messages import now

log = logging.getLogger(__name__)

#: How often a box started from a bundle repeats the certificate expiry warning in its log.
EXPIRY_CHECK_S = 86_400
#: Where the state file keeps the pack (and pinned manifest) the last ``cmd/pack`` switched to.
PACK_KEY = "model_pack"


class EdgeBox:
    def __init__(self, config: EdgeConfig, *, once: bool, on_arrival: Callable[[ArrivalEvent], None],
                 bundle: Bundle | None = None) -> None:
        """With ``bundle`` (already merged into ``config``), the box connects with its certificate
        and refuses a model pack the brand did not sign (``PackSignatureError``) before loading it."""
        self.config = config
        self.once = once
        self.on_arrival = on_arrival
        self.bundle = bundle
        self.state = StateFile(config.state_path)
        self.pack, self.pack_folder = self._startup_pack(config, bundle)
        self.config = config = config.model_copy(update={"pack": self.pack.id})
        self.placement = Placement(config.brand, config.store, config.device)
        self.outbox = Outbox(self.state, config.outbox.max_messages)
        self.visits = VisitRegistry(self.state, config.visits, self.pack.match_threshold)
        broker = bundle.broker if bundle is not None else transport.BrokerUrl.parse(config.broker)
        self.publisher = Publisher(broker, config.brand, config.store, config.device, self.pack.id, self.outbox,
                                   durable_first=config.outbox.durable_before_send)
        self.health = Health(self.placement, self.pack.id, self.outbox,
                             certificate_expiry(bundle) if bundle is not None else None, self.publisher.delivery)
        # Wi-Fi messages go through the same outbox as arrivals, so they too survive a broker outage.
        self.wifi = WifiRunner(config.wifi, self.placement, self.outbox) if config.wifi else None
        self.version = 0
        self._refused_lock = threading.Lock()  # paho's thread and the main thread both refuse
        self.finished: list[CameraWorker] = []  # workers replaced or ended, kept for the summary
        self._desired: queue.SimpleQueue[ConfigDesired | PackCommand | str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._deliver_lock = threading.Lock()
        self._threads = max(1, (os.cpu_count() or 2) // max(1, len(config.cameras)))
        self.workers = [self._worker(spec) for spec in config.cameras if spec.enabled]
        self._topics = dict(
            arrival=topics.arrival(config.brand, config.store, config.device),
            desired=topics.config_desired(config.brand, config.store, config.device),
            reported=topics.config_reported(config.brand, config.store, config.device),
            telemetry=topics.telemetry(config.brand, config.store, config.device),
            crop=crop_topic(config.brand, config.store, config.device),
            erase=topics.device_command(config.brand, config.store, config.device, ERASE),
            erase_ack=topics.device_command_ack(config.brand, config.store, config.device, ERASE),
            pack=topics.device_command(config.brand, config.store, config.device, PACK),
            pack_ack=topics.device_command_ack(config.brand, config.store, config.device, PACK),
        )
        self.publisher.on_connect(self._subscribe)

    def _startup_pack(self, config: EdgeConfig, bundle: Bundle | None) -> tuple[ModelPack, Path]:
        """The pack a ``cmd/pack`` last switched the box to, if it still verifies; else the configured one.

        A rollout's pack must survive a restart, or a promoted fleet would drift back one reboot at a time."""
        if (commanded := self.state.remembered(PACK_KEY)) and commanded != get_pack(config.pack).id:
            pack_id, _, manifest = commanded.partition(" ")
            try:
                pack = require_commercial(pack_id) if config.commercial_only else get_pack(pack_id)
                folder = verify_pack(bundle, pack, config.models, manifest or None)
                log.info("running model pack %s, switched to by a command (configured: %s)", pack.id, config.pack)
                return pack, folder
            except PackError as exc:
                log.error("the pack a command switched to no longer verifies, starting on the configured one: %s", exc)
        pack = get_pack(config.pack)
        return pack, verify_pack(bundle, pack, config.models)

    def _worker(self, spec: CameraSpec) -> CameraWorker:
        engine = FaceEngine(self.pack, self.pack_folder, threads=self._threads)
        pipeline = FacePipeline(engine, self.placement, self.config.remote(), self.visits, spec.id)
        return CameraWorker(spec, pipeline, self._deliver, threading.Event(), once=self.once)

    def _deliver(self, events: list[ArrivalEvent]) -> None:
        with self._deliver_lock:
            for event in events:
                self.outbox.put(self._topics["arrival"], event.arrival)
                self.on_arrival(event)
                if self.config.local_crop.enabled and self.config.broker_scope == "store":  # checked again at apply
                    self.publisher.live(self._topics["crop"], face_crop(event, self.config.local_crop), expiry_s=EXPIRY_S)

    # --- remote configuration -------------------------------------------------------------

    def _subscribe(self, client) -> None:
        client.message_callback_add(self._topics["desired"], self._on_desired)
        client.message_callback_add(self._topics["erase"], self._on_erase)
        client.message_callback_add(self._topics["pack"], self._on_pack)
        client.subscribe([(self._topics["desired"], 1), (self._topics["erase"], 1), (self._topics["pack"], 1)])
        self._report()

    # --- commands ----------------------------------------------------------------------------

    def _on_erase(self, client, userdata, message) -> None:
        """A member was erased in the cloud: forget the faces this box cached for their arrivals."""
        try:
            command = decode(message.payload, EraseCommand)
        except DecodeError as exc:
            self._refuse("invalid_payload", f"erase command refused: {exc}")
            return
        ok = (command.brand, command.store, command.device) == (self.config.brand, self.config.store, self.config.device)
        if ok:
            forgotten = self.visits.forget(command.arrival_event_ids)
            detail = f"forgot {forgotten} cached faces of {len(command.arrival_event_ids)} arrivals"
        else:
            detail = "erase command addressed to another device"
            self._count_refusal("topic_mismatch")
        log.info("erase %s: %s", command.command_id, detail)
        self.outbox.put(self._topics["erase_ack"], CommandAck(
            command_id=command.command_id, brand=self.config.brand, store=self.config.store, device=self.config.device,
            name=ERASE, ok=ok, detail=detail, ts=now()))

    def _on_pack(self, client, userdata, message) -> None:
        """Loading a pack takes a second: the main thread does it, never paho's network thread."""
        try:
            self._desired.put(decode(message.payload, PackCommand))
        except DecodeError as exc:
            self._refuse("invalid_payload", f"pack command refused: {exc}")

    def _switch_pack(self, command: PackCommand) -> None:
        """Verify, load and swap in the commanded pack; acknowledge with what happened and how long it took."""
        started = time.perf_counter()
        ok = False
        if (command.brand, command.store, command.device) != (self.config.brand, self.config.store, self.config.device):
            detail = "pack command addressed to another device"
            self._count_refusal("topic_mismatch")
        else:
            try:
                detail = self._use_pack(command)
                ok = True
            except Exception as exc:  # a refused pack (or a model runtime's load error) must not stop the box
                detail = f"refused, still running {self.pack.id}: {exc}"
                self._count_refusal("pack_refused")
        ms = (time.perf_counter() - started) * 1000
        (log.info if ok else log.error)("pack command %s: %s (%.0f ms)", command.command_id, detail, ms)
        self.outbox.put(self._topics["pack_ack"], CommandAck(
            command_id=command.command_id, brand=self.config.brand, store=self.config.store, device=self.config.device,
            name=PACK, ok=ok, detail=(f"{detail} in {ms:.0f} ms" if ok else detail)[:200], ts=now()))

    def _use_pack(self, command: PackCommand) -> str:
        pack = get_pack(command.pack_id)
        if self.config.commercial_only:
            require_commercial(pack)  # NotCommercialError: refused like any other bad pack, the box keeps its own
        folder = verify_pack(self.bundle, pack, self.config.models, command.manifest_sha256)
        if pack.id == self.pack.id and folder == self.pack_folder:
            return f"already running {pack.id}"  # a re-sent command whose ack was lost
        engines = [FaceEngine(pack, folder, threads=self._threads) for _ in self.workers]  # all or none
        old, self.pack, self.pack_folder = self.pack, pack, folder
        self.state.remember(PACK_KEY, f"{pack.id} {command.manifest_sha256 or ''}".strip())
        self.config = self.config.model_copy(update={"pack": pack.id})
        self.visits.use_pack(pack.match_threshold, pack.recogniser.embedding_space == old.recogniser.embedding_space)
        for worker, engine in zip(self.workers, engines):
            worker.pipeline.swap_engine(engine)
        self.publisher.use_pack(pack.id)
        self.health.model_pack = pack.id
        self._report()
        return f"switched from {old.id} to {pack.id}"

    def _on_desired(self, client, userdata, message) -> None:
        if not message.payload:
            return  # the retained desired state was cleared
        try:
            self._desired.put(decode(message.payload, ConfigDesired))
        except DecodeError as exc:
            self._count_refusal("invalid_payload")
            self._desired.put(f"desired config refused: {exc}")

    def _count_refusal(self, reason: str) -> None:
        with self._refused_lock:
            self.health.commands_refused[reason] += 1

    def _refuse(self, reason: str, detail: str) -> None:
        self._count_refusal(reason)
        log.error("%s", detail)

    def _report(self, refused: int | None = None, error: str | None = None) -> None:
        report = ConfigReported(brand=self.config.brand, store=self.config.store, device=self.config.device,
                                version=self.version, ts=now(), settings=self.config.remote(),
                                refused_version=refused, error=error[:200] if error else None,
                                model_pack=self.pack.id)
        self.publisher.live(self._topics["reported"], report, retain=True)

    def _apply(self, desired: ConfigDesired | PackCommand | str) -> None:
        if isinstance(desired, PackCommand):
            self._switch_pack(desired)
            return
        if isinstance(desired, str):
            log.error("%s", desired)
            self._report(error=desired)
            return
        if (desired.brand, desired.store, desired.device) != (self.config.brand, self.config.store, self.config.device):
            self._count_refusal("topic_mismatch")
            self._report(refused=desired.version, error="desired config is addressed to another device")
            return
        if desired.version <= self.version:
            return  # the retained copy of what already runs, seen again after a reconnect
        if (refusal := self.config.crop_refusal(desired.settings.local_crop.enabled)) is not None:
            # raw face crops never leave the store, whoever asks: refused as a whole, the old config runs on
            log.error("desired config %d refused: %s", desired.version, refusal)
            self._count_refusal("local_crop_refused")
            self._report(refused=desired.version, error=refusal)
            return
        try:
            self._reconfigure(desired.settings)
        except Exception as exc:  # a refused config must not stop the box
            log.exception("desired config %d refused", desired.version)
            self._count_refusal("config_refused")
            self._report(refused=desired.version, error=f"{type(exc).__name__}: {exc}")
            return
        self.version = desired.version
        log.info("running desired config version %d", self.version)
        self._report()

    def _reconfigure(self, settings: RemoteSettings) -> None:
        new_specs = {spec.id: spec for spec in settings.cameras if spec.enabled}
        self.config = self.config.with_remote(settings)
        self.visits.apply(settings.visits)
        keep = []
        for worker in self.workers:
            if new_specs.get(worker.spec.id) == worker.spec:
                worker.pipeline.apply(settings)
                keep.append(worker)
            else:
                worker.stop_event.set()
                worker.join(10)
                self.finished.append(worker)
        running = {w.spec.id for w in keep}
        started = [self._worker(spec) for cid, spec in new_specs.items() if cid not in running]
        for worker in started:
            worker.start()
        self.workers = keep + started

    # --- running ---------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        for worker in self.workers:
            worker.stop_event.set()
        if self.wifi is not None:
            self.wifi.stop()

    def _busy(self) -> bool:
        """A camera still runs, or the Wi-Fi source does and the box must wait for it: a capture
        replay runs to its end, a live source as long as the box (with ``once``, as the cameras)."""
        wifi = self.wifi is not None and self.wifi.is_alive() and (self.wifi.finite or not self.once)
        return wifi or any(w.is_alive() for w in self.workers)

    def _warn_expiry(self) -> None:
        if self.bundle is not None and (warning := self.bundle.expiry_warning()):
            log.warning("%s", warning)

    def run(self) -> int:
        """Run until every camera and a replayed Wi-Fi capture ended (``once``) or ``stop``;
        return the events left undelivered."""
        self._warn_expiry()
        self.publisher.start()
        for worker in self.workers:
            worker.start()
        if self.wifi is not None:
            self.wifi.start()
        next_report = time.monotonic() + self.config.telemetry_interval_s
        next_warning = time.monotonic() + EXPIRY_CHECK_S
        try:
            while not self._stop.is_set() and self._busy():
                try:
                    self._apply(self._desired.get(timeout=min(0.2, max(0.0, next_report - time.monotonic()))))
                except queue.Empty:
                    pass
                if time.monotonic() >= next_report:
                    self.publisher.live(self._topics["telemetry"], self.health.report(self.workers))
                    next_report = time.monotonic() + self.config.telemetry_interval_s
                if time.monotonic() >= next_warning:
                    self._warn_expiry()
                    next_warning = time.monotonic() + EXPIRY_CHECK_S
        finally:
            self.stop()
            for worker in self.workers:
                worker.join(30)
            if self.wifi is not None:
                self.wifi.join(30)  # it closes its last minute and sessions into the outbox
            self.publisher.live(self._topics["telemetry"], self.health.report(self.workers))
            left = self.publisher.flush(self.config.outbox.flush_timeout_s)
            if left:
                log.error("%d events not delivered yet; they stay in %s for the next start", left, self.state.path)
            self.publisher.close()
            self.state.close()
        return left

    @property
    def all_workers(self) -> list[CameraWorker]:
        return self.finished + self.workers
