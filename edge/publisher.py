"""Delivers the outbox to the broker in order, and the box's presence, telemetry and reports live.

The box starts whether or not the broker answers (a store's uplink fails; the door does not
stop); paho reconnects by itself. The drain thread hands outbox rows to paho in sequence order,
at most ``window`` unacknowledged at a time, and deletes a row when its PUBACK arrives. paho
re-sends its in-flight QoS 1 messages after a reconnect, so a row is handed over once per
process; after a restart every row still on disk is sent again, oldest first. A PUBACK saying
"no matching subscribers" (MQTT 5) means the broker dropped the message because no cloud ingest
was subscribed at that moment: the row stays and is handed over again a second later.

Presence: the retained ``DeviceState`` says online on every (re)connect and the Last Will says
offline if the box dies; a clean shutdown says offline itself after the outbox is flushed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from pydantic import BaseModel

from protocol import topics, transport
from protocol.messages import DeviceState, now

from edge.outbox import Outbox

log = logging.getLogger(__name__)

#: MQTT 5 PUBACK reason "No matching subscribers": the broker took the message, and dropped it.
NO_MATCHING_SUBSCRIBERS = 0x10
#: How long the drain waits before handing such messages over again.
NO_SUBSCRIBERS_RETRY_S = 1.0


class Publisher:
    def __init__(self, url: transport.BrokerUrl, brand: str, store: str, device: str, model_pack: str,
                 outbox: Outbox, *, window: int = 50) -> None:
        self.url = url
        self.outbox = outbox
        self.window = window
        self.connected = threading.Event()
        self.reconnects = 0
        self._state = dict(brand=brand, store=store, device=device, role="edge", model_pack=model_pack)
        self._state_topic = topics.device_state(brand, store, device)
        self._acks: queue.SimpleQueue[tuple[int, bool]] = queue.SimpleQueue()  # (mid, anyone subscribed)
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._handed = 0  # highest seq handed to paho by this process
        self._resume_at = 0.0  # monotonic time before which nothing is handed over (no subscriber)
        self.unheard = 0  # messages the broker took while nobody subscribed, handed over again
        self._stop = threading.Event()
        self._on_connect_hooks: list = []
        self.client = transport.make_client(
            url, f"edge-{brand}-{store}-{device}",
            will=(self._state_topic, DeviceState(state="offline", ts=now(), **self._state)),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._drainer = threading.Thread(target=self._drain, name="outbox-drain", daemon=True)

    def use_pack(self, model_pack: str) -> None:
        """Another model pack runs: say so in the retained state now and on every reconnect."""
        self._state["model_pack"] = model_pack
        if self.connected.is_set():
            transport.publish(self.client, self._state_topic, DeviceState(state="online", ts=now(), **self._state),
                              retain=True)

    def on_connect(self, hook) -> None:  # noqa: ANN001 - called with the paho client after each connect
        """Run ``hook(client)`` after every (re)connect, e.g. to subscribe."""
        self._on_connect_hooks.append(hook)

    def start(self) -> None:
        """Connect in the background; never fails because the broker is away."""
        if self.url.mqtt5:
            self.client.connect_async(self.url.host, self.url.port, keepalive=30, clean_start=True)
        else:
            self.client.connect_async(self.url.host, self.url.port, keepalive=30)
        self.client.loop_start()
        self._drainer.start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("broker %s refused the connection: %s", self.url, reason_code)
            return
        log.info("connected to broker %s", self.url)
        transport.publish(client, self._state_topic, DeviceState(state="online", ts=now(), **self._state), retain=True)
        self.connected.set()
        for hook in self._on_connect_hooks:
            hook(client)
        with self.outbox.changed:
            self.outbox.changed.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if self.connected.is_set():
            self.reconnects += 1
            log.warning("lost broker %s (%s); events wait in the outbox", self.url, reason_code)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        # Runs in paho's thread, possibly under paho's locks: only hand the mid over.
        if reason_code.is_failure:
            log.error("broker refused message %s: %s", mid, reason_code)
        self._acks.put((mid, reason_code.value != NO_MATCHING_SUBSCRIBERS))

    def _drain(self) -> None:
        while not self._stop.is_set():
            self._settle_acks()
            room = self.window - len(self._inflight)
            ready = self.connected.is_set() and room > 0 and time.monotonic() >= self._resume_at
            rows = self.outbox.pending(self._handed, room) if ready else []
            for row in rows:
                info = self.client.publish(row.topic, row.payload, qos=1)
                self._inflight[info.mid] = row.seq
                self._handed = row.seq
            if not rows:
                with self.outbox.changed:
                    self.outbox.changed.wait(0.05)

    def _settle_acks(self) -> None:
        done, unheard = [], []
        while True:
            try:
                mid, heard = self._acks.get_nowait()
            except queue.Empty:
                break
            if (seq := self._inflight.pop(mid, None)) is not None:
                (done if heard else unheard).append(seq)
        if done:
            self.outbox.ack(done)
        if unheard:
            # Nobody was subscribed (the cloud's ingest is restarting, or a restarted broker lost its
            # shared subscriptions), so the broker dropped them: hand these rows over again, in
            # order, after a pause. Rows handed after them go again too; the cloud drops repeats.
            if not self._resume_at:
                log.warning("no subscriber for %d events; they stay in the outbox and go again", len(unheard))
            self.unheard += len(unheard)
            self._handed = min(self._handed, min(unheard) - 1)
            self._resume_at = time.monotonic() + NO_SUBSCRIBERS_RETRY_S
        elif done:
            self._resume_at = 0.0

    def live(self, topic: str, message: BaseModel, *, retain: bool = False, expiry_s: int | None = None) -> bool:
        """Publish now if connected (QoS 0), else skip: telemetry and crops are worthless late."""
        if not self.connected.is_set():
            return False
        transport.publish(self.client, topic, message, qos=0, retain=retain, expiry_s=expiry_s)
        return True

    def flush(self, timeout: float) -> int:
        """Wait until the outbox is empty; return how many messages are still in it."""
        return self.outbox.wait_empty(timeout)

    def close(self) -> None:
        self._stop.set()
        self._drainer.join(5)
        if self.connected.is_set():
            info = transport.publish(self.client, self._state_topic, DeviceState(state="offline", ts=now(), **self._state), retain=True)
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError) as exc:
                log.warning("offline state not delivered: %s", exc)
        transport.stop(self.client)
