"""The store's ESL gateway: label commands in over MQTT, bitmaps and LED flashes out to the AP.

paho's network thread only decodes and checks a command, then queues it; one worker thread
renders and talks HTTP to the access point, so a slow or dead AP never stalls MQTT keep-alives.
The worker retries a command with exponential back-off while the AP is unavailable and gives up
only when the command expires (its ``ttl_s``), so a price change survives an AP reboot but a
"member just arrived" flash is not played to an empty aisle an hour later. Every command that is
not carried out is counted under a reason and logged; nothing a publisher sends can stop the loop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from kiosk.label_gateway.ap import AccessPoint, ApRefused, ApUnavailable, normalize_mac
from kiosk.label_gateway.render import RenderError, render, to_jpeg
from protocol import topics, transport
from protocol.codec import DecodeError, decode
from protocol.esl import TAG_TYPES, LabelCommand, TagTypeId
from protocol.messages import DeviceState, Id, now

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


class LabelBinding(BaseModel):
    """One physical tag: the label id the cloud uses, the tag's radio MAC and its panel type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Id
    mac: str
    tag_type: TagTypeId

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        return normalize_mac(value)


class LabelBook(BaseModel):
    """The labels file a technician writes when hanging tags: ``{"labels": [...]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: list[LabelBinding]

    @field_validator("labels")
    @classmethod
    def _unique(cls, labels: list[LabelBinding]) -> list[LabelBinding]:
        for key in ("label", "mac"):
            seen = Counter(getattr(binding, key) for binding in labels)
            twice = [value for value, n in seen.items() if n > 1]
            if twice:
                raise ValueError(f"{key} {twice[0]} is listed more than once")
        return labels

    @classmethod
    def load(cls, path: Path) -> LabelBook:
        """Raises ValueError naming the file and the first problem."""
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"labels file {path}: {exc}") from None

    def find(self, label: str) -> LabelBinding | None:
        return next((binding for binding in self.labels if binding.label == label), None)


@dataclass
class GatewayStats:
    """Written by the paho and worker threads; read by tests and the periodic log line."""

    received: int = 0
    #: Commands whose every step the AP took; with ``rejected`` it accounts for each one received.
    carried_out: int = 0
    drawn: int = 0
    flashed: int = 0
    retries: int = 0
    rejected: Counter = field(default_factory=Counter)


class EslGateway:
    def __init__(
        self,
        url: transport.BrokerUrl,
        brand: str,
        store: str,
        ap: AccessPoint,
        book: LabelBook,
        *,
        device: str = "esl-gw",
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.url, self.brand, self.store = url, brand, store
        self.ap, self.book = ap, book
        self.backoff_max_s = backoff_max_s
        self.stats = GatewayStats()
        self.subscribed = threading.Event()
        self._device = topics.check_id("device", device)
        self._state_topic = topics.device_state(brand, store, self._device)
        self._filter = topics.label_commands_of_store(brand, store)
        self._queue: queue.Queue[LabelCommand | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="esl-worker", daemon=True)
        self._client = transport.make_client(
            url, f"{self._device}-{brand}-{store}", will=(self._state_topic, self._state("offline"))
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._worker.start()
        transport.start(self._client, self.url)
        log.info("ESL gateway for %s/%s: %d labels, AP %s, listening on %s",
                 self.brand, self.store, len(self.book.labels), self.ap.base_url, self._filter)

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        self._worker.join(timeout=10)
        transport.publish(self._client, self._state_topic, self._state("offline"), retain=True).wait_for_publish(2)
        transport.stop(self._client)
        self.ap.close()

    def _state(self, state: str) -> DeviceState:
        return DeviceState(brand=self.brand, store=self.store, device=self._device, role="esl_gateway",
                           state=state, ts=now())

    # paho thread: check and queue

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        client.subscribe(self._filter, qos=1)
        transport.publish(client, self._state_topic, self._state("online"), retain=True)

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused the subscription to %s: %s", self._filter, refused[0])
            return
        log.info("subscribed to %s", self._filter)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata, msg: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        try:
            command = decode(bytes(msg.payload), LabelCommand)
        except DecodeError as exc:
            self._reject("bad_message", f"{msg.topic}: {exc}")
            return
        label = msg.topic.split("/")[-2]
        if (command.brand, command.store, command.label) != (self.brand, self.store, label):
            self._reject("wrong_topic", f"command for {command.brand}/{command.store}/{command.label} on {msg.topic}")
            return
        self._queue.put(command)

    # worker thread: render, upload, flash

    def _work(self) -> None:
        while (command := self._queue.get()) is not None:
            try:
                self._carry_out(command)
            except Exception:
                log.exception("command %s failed unexpectedly", command.command_id)
                self._reject("internal_error", command.command_id)

    def _carry_out(self, command: LabelCommand) -> None:
        binding = self.book.find(command.label)
        if binding is None:
            self._reject("unknown_label", f"label {command.label} is not in the labels file")
            return
        steps = []
        if command.product is not None:
            try:
                jpeg = to_jpeg(render(TAG_TYPES[binding.tag_type], command.product))
            except RenderError as exc:
                self._reject("render", f"label {command.label}: {exc}")
                return
            steps.append(("draw", lambda: self.ap.upload_image(binding.mac, jpeg)))
        flash = command.flash
        if flash is not None:
            steps.append(("flash", lambda: self.ap.flash(binding.mac, flash)))
        backoff = BACKOFF_START_S
        while steps:
            if now() >= command.expires_at:
                self._reject("expired", f"command {command.command_id} for {command.label} expired before the AP took it")
                return
            name, call = steps[0]
            try:
                call()
            except ApRefused as exc:
                self._reject("ap_refused", f"label {command.label}: {exc}")
                return
            except ApUnavailable as exc:
                self.stats.retries += 1
                log.warning("AP unavailable (%s); retrying %s of label %s in %.1f s", exc, name, command.label, backoff)
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            steps.pop(0)
            self._done(name, command, binding)
        self.stats.carried_out += 1

    def _done(self, step: str, command: LabelCommand, binding: LabelBinding) -> None:
        if step == "draw" and command.product is not None:
            self.stats.drawn += 1
            product = command.product
            log.info("drew label %s (tag %s, %s): %s ¥%s%s", command.label, binding.mac, binding.tag_type,
                     product.name, product.price, f" {command.reason}" if command.reason else "")
        elif command.flash is not None:
            self.stats.flashed += 1
            flash = command.flash
            log.info("flashing label %s (tag %s) %s x%d, %d repeats%s", command.label, binding.mac, flash.color,
                     flash.flashes, flash.repeats, f": {command.reason}" if command.reason else "")

    def _reject(self, reason: str, detail: str) -> None:
        self.stats.rejected[reason] += 1
        log.warning("rejected label command (%s): %s; %d rejected so far", reason, detail,
                    sum(self.stats.rejected.values()))
