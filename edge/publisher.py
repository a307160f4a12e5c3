"""Delivers the outbox to the broker in order, and the box's presence, telemetry and reports live.

The box starts whether or not the broker answers (a store's uplink fails; the door does not
stop); paho reconnects by itself. Outbox rows go to paho in sequence order, at most ``window``
unacknowledged at a time: a row put while every earlier one is handed over goes at once from the
putting thread, the others from the drain thread, which deletes a row when its PUBACK arrives. paho
re-sends its in-flight QoS 1 messages after a reconnect, so a row is handed over once per
process; after a restart every row still on disk is sent again, oldest first. A PUBACK saying
"no matching subscribers" (MQTT 5) means the broker dropped the message because no cloud ingest
was subscribed at that moment: the row stays and is handed over again a second later.

A PUBACK with a failure reason (any code >= 0x80: 0x87 "Not authorized" for a device the broker
does not know yet, 0x97 quota exceeded, 0x95 too large ...) means the broker did **not** take the
message: the row stays in the outbox, is counted by reason (``refused``, in telemetry and in the
state file), and that row and every later one go again, in order, after a back-off that doubles
from 1 s to 60 s while the refusals go on and resets at the first accepted message. So a box
installed before the broker learnt its certificate loses nothing: its events wait until the
device is added (live, ``instore provision device create --apply``).

Presence: the retained ``DeviceState`` says online on every (re)connect and the Last Will says
offline if the box dies; a clean shutdown says offline itself after the outbox is flushed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter

from pydantic import BaseModel

from edge.outbox import Outbox, Row
from protocol import topics, transport
from protocol.messages import DeviceState, now

log = logging.getLogger(__name__)

#: MQTT 5 PUBACK reason "No matching subscribers": the broker took the message, and dropped it.
NO_MATCHING_SUBSCRIBERS = 0x10
#: How long the drain waits before handing such messages over again.
NO_SUBSCRIBERS_RETRY_S = 1.0
#: MQTT 5 reason codes from here up are failures: the broker did not accept the message.
FIRST_FAILURE = 0x80
#: Back-off after refused messages: doubles from the first to the last while refusals go on.
REFUSED_RETRY_MIN_S = 1.0
REFUSED_RETRY_MAX_S = 60.0
#: Where the state file keeps the delivery refusals (so they outlive a restart of the box).
DELIVERY_KEY = "delivery"


class Publisher:
    def __init__(self, url: transport.BrokerUrl, brand: str, store: str, device: str, model_pack: str,
                 outbox: Outbox, *, window: int = 50, durable_first: bool = False) -> None:
        """``durable_first``: hand a row over only once a group fsync covered it (``outbox.
        durable_before_send``, docs/EDGE.md "What a crash can do"); otherwise as soon as it is committed."""
        self.url = url
        self.outbox = outbox
        self.window = window
        self.durable_first = durable_first
        self.connected = threading.Event()
        self.reconnects = 0
        self._state = dict(brand=brand, store=store, device=device, role="edge", model_pack=model_pack)
        self._state_topic = topics.device_state(brand, store, device)
        # (mid, reason code, its name, monotonic time it came)
        self._acks: queue.SimpleQueue[tuple[int, int, str, float]] = queue.SimpleQueue()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._handed = 0  # highest seq handed to paho by this process
        # Held while rows are handed to paho and PUBACKs settled: rows go from the drain thread and,
        # when it is caught up, straight from the thread that put them (``_offer``).
        self._handing = threading.Lock()
        self._resume_at = 0.0  # monotonic time before which nothing is handed over (no subscriber)
        self.unheard = 0  # messages the broker took while nobody subscribed, handed over again
        #: PUBACKs with a failure reason since start, by reason; each such row stayed and goes again.
        self.refused: Counter[str] = Counter()
        self.backoff_s = 0.0  # the current back-off after refusals; 0 once the broker accepts again
        self._refused_seqs: set[int] = set()  # rows refused in the current round, until one goes through
        self._refusals_before = self._load_refusals()
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
        outbox.on_put(self._offer)
        if durable_first:
            outbox.on_durable(self._wake)

    def use_pack(self, model_pack: str) -> None:
        """Another model pack runs: say so in the retained state now and on every reconnect."""
        self._state["model_pack"] = model_pack
        if self.connected.is_set():
            transport.publish(self.client, self._state_topic, DeviceState(state="online", ts=now(), **self._state),
                              retain=True)

    def on_connect(self, hook) -> None:  # called with the paho client after each connect
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

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
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

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            self.reconnects += 1
            log.warning("lost broker %s (%s); events wait in the outbox", self.url, reason_code)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Runs in paho's thread, possibly under paho's locks: only hand the mid over.
        self._acks.put((mid, reason_code.value, str(reason_code), time.monotonic()))

    def _offer(self, row: Row, previous: int) -> bool:
        """A row was just committed: hand it to paho now, on the producer's thread, if every row
        before it is already handed over and nothing holds the queue (disconnected, window full,
        a pause after refusals). Otherwise the drain thread takes it, in order.

        This saves the drain thread's wake-up and its read of the row back from the table (0.2 ms of
        the ~1 ms from put to the subscriber here), and is safe for the order: ``previous`` is the
        row put just before this one, so a row overtakes nothing."""
        if row.seq > self._sendable():  # not yet fsynced (durable_first): no wait on the drain's lock for it
            return False
        with self._handing:
            if (self._handed != previous or not self.connected.is_set() or self._stop.is_set()
                    or len(self._inflight) >= self.window or time.monotonic() < self._resume_at):
                return False
            self._hand_over(row)
            return True

    def _sendable(self) -> int:
        """The highest row number that may be handed over now."""
        return self.outbox.durable_seq if self.durable_first else self.outbox.last_seq

    def _wake(self, durable_seq: int) -> None:
        with self.outbox.changed:
            self.outbox.changed.notify_all()

    def _hand_over(self, row: Row) -> None:
        info = self.client.publish(row.topic, row.payload, qos=1)
        self._inflight[info.mid] = row.seq
        self._handed = row.seq

    def _drain(self) -> None:
        while not self._stop.is_set():
            with self._handing:
                delivered = self._settle_acks()
                room = self.window - len(self._inflight)
                ready = self.connected.is_set() and room > 0 and time.monotonic() >= self._resume_at
                rows = self.outbox.pending(self._handed, room, self._sendable()) if ready else []
                for row in rows:
                    self._hand_over(row)
            # Delivered rows are deleted after the new ones went out: the delete (a write under the
            # state file's lock) used to stand between an arrival entering the outbox and its send.
            if delivered:
                self.outbox.ack(delivered, heard=delivered)
            if not rows:  # a put the producer's thread handed over itself does not wake this thread
                with self.outbox.changed:
                    self.outbox.changed.wait(0.05)

    def _settle_acks(self) -> dict[int, float]:
        """Take the PUBACKs that came: rewind for refused or unheard rows; return the delivered rows'
        sequence numbers (with the time each PUBACK came), for the caller to delete once it has sent
        what is ready."""
        done: dict[int, float] = {}
        unheard, refused = [], []
        reasons: Counter[str] = Counter()
        while True:
            try:
                mid, code, name, heard = self._acks.get_nowait()
            except queue.Empty:
                break
            if (seq := self._inflight.pop(mid, None)) is None:
                continue
            if code >= FIRST_FAILURE:
                refused.append(seq)
                reasons[name] += 1
            elif code == NO_MATCHING_SUBSCRIBERS:
                unheard.append(seq)
            else:
                done[seq] = heard
        if refused:
            self._refused(refused, reasons)
        elif unheard:
            # Nobody was subscribed (the cloud's ingest is restarting, or a restarted broker lost its
            # shared subscriptions), so the broker dropped them: hand these rows over again, in
            # order, after a pause. Rows handed after them go again too; the cloud drops repeats.
            if not self._resume_at:
                log.warning("no subscriber for %d events; they stay in the outbox and go again", len(unheard))
            self.unheard += len(unheard)
            self._handed = min(self._handed, min(unheard) - 1)
            self._resume_at = max(self._resume_at, time.monotonic() + NO_SUBSCRIBERS_RETRY_S)
        elif done and not self.backoff_s:
            self._resume_at = 0.0
        elif done and self._refused_seqs.intersection(done):
            # A refused row went through on a retry: the broker takes this box's messages again.
            log.info("broker accepts messages again; the refused ones are being delivered")
            self._refused_seqs.clear()
            self.backoff_s = self._resume_at = 0.0
        return done

    def _refused(self, seqs: list[int], reasons: Counter[str]) -> None:
        """The broker did not take these: keep the rows, send them (and all after) again after a back-off."""
        self.refused.update(reasons)
        self._refused_seqs.update(seqs)
        self._handed = min(self._handed, min(seqs) - 1)
        now_m = time.monotonic()
        if now_m >= self._resume_at:  # a new round of refusals (not more answers of the same round)
            self.backoff_s = min(REFUSED_RETRY_MAX_S, max(REFUSED_RETRY_MIN_S, self.backoff_s * 2))
            self._resume_at = now_m + self.backoff_s
            log.error("broker refused %d messages (%s); they stay in the outbox (%d waiting) and go again in %.0f s",
                      len(seqs), ", ".join(f"{r}: {n}" for r, n in reasons.items()), self.outbox.depth, self.backoff_s)
            self._save_refusals()

    def _load_refusals(self) -> dict[str, int]:
        raw = self.outbox.state.remembered(DELIVERY_KEY)
        try:
            return dict(json.loads(raw)["refused_total"]) if raw else {}
        except (ValueError, KeyError, TypeError):
            return {}

    def _save_refusals(self) -> None:
        total = Counter(self._refusals_before)
        total.update(self.refused)
        self.outbox.state.remember(DELIVERY_KEY, json.dumps(
            {"refused_total": dict(total), "last_refused_at": now().isoformat(), "backoff_s": self.backoff_s}))

    def delivery(self) -> dict[str, object]:
        """For telemetry: refusals since start by reason, the current back-off, rows waiting."""
        return {"refused": dict(self.refused), "backoff_s": self.backoff_s, "unheard": self.unheard}

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
