"""Device events in, guide cards out: the cloud's MQTT worker, on the process's one MQTT connection.

paho's network thread only queues incoming messages; one worker thread does the decoding,
matching and database work, so a slow disk never delays PUBACKs or keepalives. Anything wrong
with a message (topic, payload, a payload claiming another store than its topic) is logged with
its reason, counted, and dropped: one bad edge box must never stop the cards of every other
store.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from cloud.arrivals import feedback, fusion, joining, metrics, staff, till, visits, wifi
from cloud.arrivals.cards import CardBuilder, Door
from cloud.arrivals.visits import Visit
from cloud.cdp import members
from cloud.db import Database, retrying
from cloud.faces import learning
from cloud.faces.enrolment import Enroller
from cloud.faces.matching import Match, Matcher
from cloud.fleet import commands, devices
from cloud.fleet.rollout import telemetry as rollout_telemetry
from cloud.pricing.label_flash import ArrivalFlasher
from protocol import topics, transport
from protocol.codec import DecodeError, decode
from protocol.commands import CommandAck
from protocol.device import FaceEnrolment, Telemetry
from protocol.facepack import PACKS
from protocol.messages import (
    Arrival,
    DeviceState,
    Evidence,
    Feedback,
    GuideCard,
    GuideTaskDone,
    Message,
    StaffSign,
    StageTimes,
    new_id,
)
from protocol.till import TillOrder
from protocol.wifi import WifiFootfall, WifiPresence

log = logging.getLogger(__name__)

#: Tries of one message against transient database errors (waits 50 ms, 100 ms... between them).
ROUTE_ATTEMPTS = 4
#: A box's ``devices.last_seen`` is written by its arrivals at most this often per ingest process (its
#: telemetry writes it every 30 s; device health calls a box offline after minutes): on every arrival
#: it was a statement more, and the box's row stayed locked by one process's batch of arrivals while
#: another process's batch waited for it, or deadlocked with it.
DEVICE_SEEN_EVERY_S = 30.0

RejectReason = Literal[
    "bad_topic", "unsupported_event", "invalid_payload", "topic_mismatch", "unknown_device", "revoked_device",
    "unknown_device_key", "unknown_visit", "unknown_command", "unrequested_face", "unknown_task",
]
#: What the runtime wires in for a guide's 完成 on a task (``cloud.activation.guide_task``): recorded,
#: a repeat, or a task this cloud never sent to that store.
TaskDoneHook = Callable[[GuideTaskDone], Literal["recorded", "duplicate", "unknown_task"]]
#: What the runtime wires in for a stored sign-in or sign-out: the store's floor to its screens
#: (``cloud.arrivals.staff.publish_floor``).
StaffSignedHook = Callable[[StaffSign], object]
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Outgoing:
    """A card to publish and the screen it is for: every screen of the store for a door arrival, the
    one screen whose assistant answered 是 for the member's full card after an uncertain one."""

    card: GuideCard
    screen: str = topics.ALL_SCREENS


#: A handler of one kind of message: (topic's levels, topic, payload) -> the card to publish, if any.
Handler = Callable[[topics.TopicInfo, str, bytes], Outgoing | None]
#: Device reports (a box's state and telemetry) are not events: not counted as received, and read
#: from unregistered devices too (the registry lists what it saw).
_REPORTS = frozenset({"state", "telemetry"})


@dataclass(frozen=True)
class IngestCounts:
    received: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    matched: int = 0
    visitors: int = 0
    cards: int = 0
    errors: int = 0
    retries: int = 0  # messages routed again after a transient database error
    presence: int = 0
    wifi_joined: int = 0
    footfall_minutes: int = 0
    feedback: int = 0
    device_reports: int = 0
    command_acks: int = 0
    face_enrolments: int = 0  # live crops a guide screen sent after a visitor joined with face consent
    till_orders: int = 0
    same_visit: int = 0  # arrivals that were a visit another box (or an earlier arrival) had opened
    uncertain: int = 0  # visitor cards that asked "可能是 王女士？请确认"
    confirmed_cards: int = 0  # member cards sent after an assistant's 是
    wifi_promoted: int = 0  # uncertain faces the member's phone in the store raised to the member
    tasks_done: int = 0  # guides' 完成 on campaign and journey tasks, recorded and passed on to the store's screens
    staff_signs: int = 0  # assistants' sign-ins and sign-outs (上岗/离岗) on the guide screens
    batches: int = 0  # transactions that stored several arrivals waiting in the inbox together
    batch_fallbacks: int = 0  # batches rolled back (a poison message, a deadlock) and routed again one by one


class _Counters:
    """Counts written by the worker thread and read by the API thread. Within ``staged()`` the calling
    thread's counts wait for the batch they belong to: kept if it commits, dropped if it is rolled
    back (its messages are then routed again, one by one, and counted then)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._staging = threading.local()

    def add(self, name: str) -> None:
        staged = getattr(self._staging, "counts", None)
        if staged is not None:
            staged[0][name] += 1
            return
        with self._lock:
            self._counts[name] += 1

    def reject(self, reason: RejectReason) -> None:
        staged = getattr(self._staging, "counts", None)
        if staged is not None:
            staged[1][reason] += 1
            return
        with self._lock:
            self._rejected[reason] += 1

    @contextmanager
    def staged(self) -> Iterator[None]:
        counts: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        self._staging.counts = (counts, rejected)
        try:
            yield
        finally:
            self._staging.counts = None
        with self._lock:  # not reached when the batch raised
            self._counts.update(counts)
            self._rejected.update(rejected)

    def snapshot(self) -> IngestCounts:
        with self._lock:
            return IngestCounts(rejected=dict(self._rejected), **self._counts)


class EventProcessor:
    """One message's way from topic and payload to stored rows and, for a face, a card to publish.

    Dispatches through ``handlers``, on the kind of message its topic names
    (``protocol.topics.TopicInfo.message``): ``evt/arrival``, ``evt/presence``, ``evt/footfall``
    (events: from registered devices only, once a registry exists), a device's ``state`` and
    ``telemetry``, guide-screen ``feedback`` and ``staff`` sign-ins, boxes' ``cmd/<name>/ack`` and a
    screen's ``evt/face`` (the crop of a visitor who joined with face consent, enrolled by ``enroller``).
    """

    def __init__(
        self, db: Database, matcher: Matcher, cards: CardBuilder, *, join_window_s: int = 600,
        require_known_devices: bool | None = None, enroller: Enroller | None = None,
    ) -> None:
        self._db = db
        self._enroller = enroller
        self._matcher = matcher
        self._cards = cards
        self._window_s = join_window_s
        self._require_known = require_known_devices
        self.counters = _Counters()
        self._recent_visitors = visits.RecentVisitors()
        self._devices_seen: dict[tuple[str, str, str], float] = {}  # when this process last wrote each box's row
        self._devices_writing: list[tuple[str, str, str]] = []  # ... and the rows the open unit of work writes
        self.fusion = fusion.Fusion(db)
        #: a guide's 完成 on a task, on the screen's feedback topic; None: no task channel (no broker)
        self.task_done: TaskDoneHook | None = None
        #: a sign-in or sign-out stored; None: nobody to tell (no broker)
        self.staff_signed: StaffSignedHook | None = None
        self.handlers: dict[str, Handler] = {
            "arrival": self._arrival,
            "presence": self._presence,
            "footfall": self._footfall,
            "order": self._till_order,
            "state": self._state,
            "telemetry": self._telemetry,
            "feedback": self._feedback,
            "command_ack": self._command_ack,
            "face_enrolment": self._face_enrolment,
            "staff_sign": self._staff_sign,
        }

    def process(self, topic: str, payload: bytes) -> GuideCard | None:
        """The card to publish, or None (not a face or a 是, rejected, a duplicate)."""
        outgoing = self.route(topic, payload)
        return outgoing.card if outgoing is not None else None

    def route_retrying(self, topic: str, payload: bytes) -> Outgoing | None:
        """Route one message, again after a transient database error (a deadlock between two ingest
        processes' arrival transactions, a dropped connection): the worker acknowledges the message
        after this, so giving up at once would lose it."""

        def again(exc: Exception) -> None:
            self.counters.add("retries")
            log.warning("message on %s met a transient database error, again: %s", topic, exc)

        return retrying(lambda: self.route(topic, payload), attempts=ROUTE_ATTEMPTS, pause=0.05, on_retry=again)

    @property
    def batches(self) -> bool:
        """Whether several arrivals can be stored in one transaction (``route_batch``)."""
        return self._db.atomic_groups

    def route_batch(self, messages: Sequence[tuple[str, bytes]]) -> list[Outgoing | None] | None:
        """Several arrivals in one transaction where that is one commit for all (``Database.atomic_groups``:
        on a loaded PostgreSQL server a BEGIN, a COMMIT and its WAL flush per arrival were a tenth of its
        time); each one's card to publish, once the whole batch is stored. None when the batch failed:
        it was rolled back whole, nothing of it stored or counted or remembered, and the caller routes
        its messages again one by one (``route_retrying``), so a poison message sinks only itself and a
        deadlock with another ingest process is retried; None at once, routing nothing, where a batch
        would not be one transaction (SQLite)."""
        if not self.batches:
            return None
        try:
            with self.counters.staged(), self._recent_visitors.staged(), self._db.grouped():
                routed = [self._route(topic, payload) for topic, payload in messages]
        except Exception as exc:  # any failure: the messages are routed again one by one
            self._devices_writing.clear()
            self.counters.add("batch_fallbacks")
            log.warning("a batch of %d arrivals failed, routing them one by one: %s", len(messages), exc)
            return None
        self._devices_written()
        self.counters.add("batches")
        return routed

    def route(self, topic: str, payload: bytes) -> Outgoing | None:
        """The card to publish and the screen it is for, or None."""
        try:
            outgoing = self._route(topic, payload)
        except BaseException:
            self._devices_writing.clear()
            raise
        self._devices_written()
        return outgoing

    def _devices_written(self) -> None:
        """The unit of work committed: the boxes' rows it wrote are fresh as of now."""
        at = time.monotonic()
        for box in self._devices_writing:
            self._devices_seen[box] = at
        self._devices_writing.clear()

    def _register(self, visit: Visit) -> bool:
        """Whether this arrival writes its box's ``devices`` row (``DEVICE_SEEN_EVERY_S``)."""
        box = (visit.brand, visit.store, visit.device)
        if time.monotonic() - self._devices_seen.get(box, -DEVICE_SEEN_EVERY_S) < DEVICE_SEEN_EVERY_S:
            return False
        self._devices_writing.append(box)
        return True

    def _route(self, topic: str, payload: bytes) -> Outgoing | None:
        try:
            where = topics.parse(topic)
        except topics.TopicError as exc:
            self.counters.add("received")
            self._reject("bad_topic", topic, str(exc))
            return None
        kind = where.message
        if kind not in _REPORTS:
            self.counters.add("received")
        # An arrival's ~25 statements (device check, de-duplication, match, visit, card) in one
        # transaction on PostgreSQL: each transaction of its own cost a pool checkout and a BEGIN and a
        # COMMIT round trip more, most of an arrival's time on a loaded server; and the visit, its held
        # face and its card's shown script are stored together or not at all.
        with self._db.grouped() if kind == "arrival" else nullcontext():
            if where.kind.startswith("evt/") and not self._known_device(where, topic):
                return None
            handler = self.handlers.get(kind) if kind is not None else None
            if handler is None:
                self._reject("unsupported_event", topic, f"no handler for {where.kind!r}")
                return None
            return handler(where, topic, payload)

    # arrivals -----------------------------------------------------------------------------------

    def _arrival(self, where: topics.TopicInfo, topic: str, payload: bytes) -> Outgoing | None:
        arrival = self._decode(where, topic, payload, Arrival)
        if arrival is None:
            return None
        trace = metrics.reached(arrival.timings or StageTimes(capture=arrival.ts), "ingested")
        pack = PACKS.get(arrival.model_pack)
        if pack is not None and arrival.embedding.dim != pack.recogniser.embedding_dim:
            dims = (arrival.embedding.dim, pack.recogniser.embedding_dim)
            self._reject("invalid_payload", topic, f"{dims[0]}-d embedding from a {dims[1]}-d pack {pack.id}")
            return None
        if visits.has_arrival(self._db, arrival.event_id):
            self._duplicate(arrival.event_id)
            return None
        vector = arrival.embedding.to_vector()
        fused = self.fusion.fuse(self._matcher.match(vector, arrival.model_pack, arrival.store), arrival.store,
                                 arrival.ts)
        match = fused.match
        trace = metrics.reached(trace, "matched")
        if self._same_visit_elsewhere(arrival, match, vector):
            return None
        joined = None
        if match.member is not None:
            joined = wifi.wifi_only_visit(self._db, match.member.id, arrival.store, arrival.ts, self._window_s)
        card = self._cards.build(arrival, match, visit_id=joined["id"] if joined else new_id(), timings=trace,
                                 evidence=fused.evidence)
        visit = Visit(
            id=card.visit_id, brand=arrival.brand, store=arrival.store,
            member_id=match.member.id if match.member else None, confidence=match.confidence,
            ts=arrival.ts, arrival_event_id=arrival.event_id, device=arrival.device, camera=arrival.camera,
            card_id=card.card_id, phone=fused.phone, fused_confidence=fused.confidence,
            fusion="；".join(fused.reasons) or None,
        )
        store = visits.join_wifi_visit if joined else visits.record_visit
        stored = store(self._db, visit, register=self._register(visit))
        if not stored:
            self._duplicate(arrival.event_id)
            return None
        self.counters.add("matched" if match.member else "visitors")
        if match.member is not None:  # learned only if the assistant confirms it (cloud.faces.learning)
            learning.hold(self._db, visit_id=visit.id, member_id=match.member.id, vector=vector,
                          pack_id=arrival.model_pack, score=match.confidence)
        if match.reason == "wifi":
            self.counters.add("wifi_promoted")
        if match.reason == "uncertain" and match.candidate is not None:
            visits.mark_uncertain(self._db, visit.id, match.candidate.id, arrival.ts)
            self.counters.add("uncertain")
        if match.member is None:
            self._recent_visitors.remember(arrival.brand, arrival.store, vector, arrival.ts, visit.id)
        if joined:
            self.counters.add("wifi_joined")
        log.info(
            "arrival %s at %s/%s: %s (%s, %.3f)%s", arrival.event_id, arrival.brand, arrival.store,
            match.member.id if match.member else "visitor", match.reason, match.confidence,
            " joining its Wi-Fi visit" if joined else "",
        )
        return Outgoing(card)

    def _same_visit_elsewhere(self, arrival: Arrival, match: Match, vector: np.ndarray) -> bool:
        """True when another box (or this one, later) already opened this visit: the arrival is
        stored against it, with no second visit and no second card (``cloud.arrivals.visits``)."""
        if match.member is not None:
            visits.hold_member_visit(self._db, match.member.id, arrival.brand, arrival.store)
            existing = visits.member_visit_nearby(self._db, match.member.id, arrival.brand, arrival.store, arrival.ts)
        else:
            existing = self._recent_visitors.same_visit(arrival.brand, arrival.store, vector, arrival.ts)
        if existing is None:
            return False
        seen = Visit(id=existing, brand=arrival.brand, store=arrival.store,
                     member_id=match.member.id if match.member else None, confidence=match.confidence,
                     ts=arrival.ts, arrival_event_id=arrival.event_id, device=arrival.device,
                     camera=arrival.camera, card_id="")
        if not visits.attach_arrival(self._db, seen, register=self._register(seen)):
            self._duplicate(arrival.event_id)
        else:
            self.counters.add("same_visit")
            log.info("arrival %s at %s/%s from %s: same visit as %s", arrival.event_id, arrival.brand,
                     arrival.store, arrival.device, existing)
        return True

    # Wi-Fi ----------------------------------------------------------------------------------------

    def _presence(self, where: topics.TopicInfo, topic: str, payload: bytes) -> Outgoing | None:
        event = self._decode(where, topic, payload, WifiPresence)
        if event is None:
            return None
        # before the presence is stored, so that its enter joins the visit it raised
        raised = self._raise_on_phone(event) if event.phase == "enter" else None
        outcome = wifi.record_presence(self._db, event, window_s=self._window_s)
        if outcome == "unknown_key":
            self.counters.reject("unknown_device_key")  # nothing about the key is kept, not even in the log
            return None
        if outcome == "duplicate":
            self._duplicate(event.event_id)
            return None
        self.counters.add("presence")
        if outcome == "joined":
            self.counters.add("wifi_joined")
        log.info("presence %s %s at %s/%s: %s", event.event_id, event.phase, event.brand, event.store, outcome)
        return raised

    def _raise_on_phone(self, event: WifiPresence) -> Outgoing | None:
        """The phone entered after the face: an uncertain visit of its owner at this store within the
        window is fused again with the phone present; if that raises it, the visit becomes the member's
        and every screen of the store gets the member's card in place of the question."""
        person = wifi.person_for_key(self._db, event.device_key)
        visit = visits.uncertain_visit_of(self._db, person, event.store, event.ts, self._window_s) if person else None
        candidate = members.member(self._db, visit["corrected_member_id"]) if visit else None
        if visit is None or candidate is None or not candidate.face_consent:
            return None
        bar, floor = self._matcher.bounds(event.store)
        asked = Match(None, visit["confidence"], "uncertain", candidate=candidate, threshold=bar, floor=floor)
        fused = fusion.decide(self.fusion.model(bar, floor), asked, "present")
        if fused.match.reason != "wifi" or fused.confidence is None:
            return None
        if not visits.promote(self._db, visit["id"], candidate.id, phone="present", fused_confidence=fused.confidence,
                              fusion="；".join(fused.reasons), ts=event.ts):
            return None
        self.counters.add("wifi_promoted")
        log.info("visit %s at %s/%s: the phone's enter raised it to %s", visit["id"], event.brand, event.store,
                 candidate.id)
        return self._member_card(visit["id"], topics.ALL_SCREENS, evidence=fused.evidence)

    def _footfall(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        minute = self._decode(where, topic, payload, WifiFootfall)
        if minute is None:
            return
        if wifi.record_footfall(self._db, minute):
            self.counters.add("footfall_minutes")
        else:
            self._duplicate(minute.event_id)

    # till orders ----------------------------------------------------------------------------------

    def _till_order(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        order = self._decode(where, topic, payload, TillOrder)
        if order is None:
            return
        report = till.land(self._db, "pos", [order.as_stream_row()], store=order.store,
                           source=f"till:{order.store}/{order.device}", actor=f"till:{order.device}")
        if report["quarantined"].get("duplicate_order"):
            return self._duplicate(order.order_no)
        self.counters.add("till_orders")
        if report["quarantined"]:
            log.warning("till order %s of %s/%s quarantined: %s", order.order_no, order.store, order.device,
                        report["quarantined"])

    # devices and screens --------------------------------------------------------------------------

    def _known_device(self, where: topics.TopicInfo, topic: str) -> bool:
        verdict = devices.verdict(self._db, where.brand, where.store, where.device, required=self._require_known)
        if verdict is None:
            return True
        if verdict != "known":
            self._reject(verdict, topic, f"device {where.device} of store {where.store} is {verdict.replace('_', ' ')}")
            return False
        return True

    def _state(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        state = self._decode(where, topic, payload, DeviceState)
        if state is not None:
            devices.observed(self._db, state.brand, state.store, state.device, state.role, ts=state.ts,
                             conn_state=state.state, model_pack=state.model_pack)
            self.counters.add("device_reports")

    def _telemetry(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        report = self._decode(where, topic, payload, Telemetry)
        if report is not None:
            devices.observed(self._db, report.brand, report.store, report.device, "edge", ts=report.ts,
                             conn_state="online", model_pack=report.model_pack)
            rollout_telemetry.record(self._db, report)
            self.counters.add("device_reports")

    def _command_ack(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        ack = self._decode(where, topic, payload, CommandAck)
        if ack is None:
            return
        if ack.name != where.path[1]:
            return self._reject("topic_mismatch", topic, f"an ack of a {ack.name!r} command on the {where.path[1]!r} topic")
        outcome = commands.record_ack(self._db, ack)
        if outcome == "unknown_command":
            return self._reject("unknown_command", topic, f"no {ack.name} command {ack.command_id} sent to this device")
        if outcome == "duplicate":
            return self._duplicate(ack.command_id)
        self.counters.add("command_acks")
        log.info("%s command %s %s by %s/%s: %s", ack.name, ack.command_id, "done" if ack.ok else "refused",
                 ack.store, ack.device, ack.detail)

    def _face_enrolment(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        message = self._decode(where, topic, payload, FaceEnrolment)
        if message is None:
            return
        if self._enroller is None:
            return self._reject("unsupported_event", topic, "this cloud process enrols no faces")
        ack = joining.enrol_crop(self._db, self._enroller, message)
        if ack is None:  # no enrol command awaits this crop: nobody consented to it leaving the store
            return self._reject("unrequested_face", topic, f"no open enrol command {message.command_id} for this screen")
        self.counters.add("face_enrolments")
        log.info("face crop for %s from %s/%s: %s", message.member_id, message.store, message.device, ack.detail)

    def _feedback(self, where: topics.TopicInfo, topic: str, payload: bytes) -> Outgoing | None:
        try:
            action = decode(payload, Feedback)
        except DecodeError as exc:
            if exc.field == "type":  # not about a card: a task done, or nothing a screen sends
                self._task_done(where, topic, payload)
            else:
                self._reject("invalid_payload", topic, str(exc))
            return None
        if not self._names_its_topic(where, topic, action, screen=True):
            return None
        outcome = feedback.record(self._db, action)
        if outcome == "unknown_visit":
            self._reject("unknown_visit", topic, f"no card {action.card_id} of visit {action.visit_id} here")
            return None
        if outcome == "duplicate":
            self._duplicate(action.feedback_id)
            return None
        self.counters.add("feedback")
        log.info("feedback %s on card %s: %s", action.feedback_id, action.card_id, action.action)
        if outcome != "confirmed":
            return None
        # 是 on an uncertain card: the screen that asked gets the member's full card for the visit
        outgoing = self._member_card(action.visit_id, action.screen)
        if outgoing is not None:
            self.counters.add("confirmed_cards")
        return outgoing

    def _member_card(self, visit_id: str, screen: str, evidence: Evidence | None = None) -> Outgoing | None:
        """The member's full card (profile, recommendations, script) for a visit that became theirs
        after its face (是, or their phone), made the visit's card. The same consent rule as at the
        door: a member erased or without face consent since then gets none."""
        visit = visits.one(self._db, visit_id)
        member = members.member(self._db, visit["member_id"]) if visit and visit["member_id"] else None
        if visit is None or member is None or not member.face_consent:
            log.info("visit %s: no member card, the member is gone or withdrew face consent", visit_id)
            return None
        door = Door(visit["arrival_event_id"], visit["brand"], visit["store"], datetime.fromisoformat(visit["ts"]))
        card = self._cards.member_card(door, member, visit["confidence"], visit["id"], evidence=evidence)
        visits.reissue_card(self._db, visit["id"], card.card_id)
        return Outgoing(card, screen)

    def _staff_sign(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        sign = self._decode(where, topic, payload, StaffSign, screen=True)
        if sign is None:
            return
        if staff.record(self._db, sign) == "duplicate":
            return self._duplicate(sign.sign_id)
        self.counters.add("staff_signs")
        log.info("%s %s on %s/%s", sign.assistant, sign.action, sign.store, sign.screen)
        if self.staff_signed is not None:
            self.staff_signed(sign)

    # shared ---------------------------------------------------------------------------------------

    def _task_done(self, where: topics.TopicInfo, topic: str, payload: bytes) -> None:
        done = self._decode(where, topic, payload, GuideTaskDone, screen=True)
        if done is None:
            return
        if self.task_done is None:
            return self._reject("unsupported_event", topic, "this cloud process sends no guide tasks")
        outcome = self.task_done(done)
        if outcome == "unknown_task":
            return self._reject("unknown_task", topic, f"no task {done.task_id} was sent to {done.store}")
        if outcome == "duplicate":
            return self._duplicate(done.task_id)
        self.counters.add("tasks_done")
        log.info("task %s done on %s/%s by %s", done.task_id, done.store, done.screen, done.assistant or "a guide")

    def _decode(self, where: topics.TopicInfo, topic: str, payload: bytes, kind: type[M], *,
                screen: bool = False) -> M | None:
        """The payload as ``kind``, if it decodes and names the brand/store/device of its topic (``screen``:
        a guide screen's message, which names the screen of its ``guide/{screen}/...`` topic)."""
        try:
            message = decode(payload, kind)
        except DecodeError as exc:
            self._reject("invalid_payload", topic, str(exc))
            return None
        return message if self._names_its_topic(where, topic, message, screen=screen) else None

    def _names_its_topic(self, where: topics.TopicInfo, topic: str, message: Message, *, screen: bool) -> bool:
        """Whether the message names the brand/store/device (``screen``: the screen) of its topic; a
        rejection when not."""
        level = "screen" if screen else "device"
        claimed = (message.brand, message.store, getattr(message, level))  # type: ignore[attr-defined]
        if claimed != (where.brand, where.store, where.path[0] if screen else where.device):
            self._reject("topic_mismatch", topic, f"payload says brand/store/{level} {'/'.join(claimed)}")
            return False
        return True

    def _reject(self, reason: RejectReason, topic: str, detail: str) -> None:
        self.counters.reject(reason)
        log.warning("rejected message on %s: %s: %s", topic, reason, detail)

    def _duplicate(self, event_id: str) -> None:
        self.counters.add("duplicates")
        log.debug("duplicate event %s ignored", event_id)


#: What paho's thread hands the worker: topic, payload, message id, QoS, connection number.
_Received = tuple[str, bytes, int, int, int]
_STOP = None  # in the inbox: the worker ends
#: Arrivals stored in one transaction at most: a batch's cards are published once it commits, so a
#: bigger one delays its first card more, for little less cost an arrival (a batch of 4 already saves
#: three commits in four). Measured with bench/ingest_capacity.py on PostgreSQL (docs/PERFORMANCE.md,
#: issue 19, seventh pass): 2, 4 and 8 held 25 arrivals/s at card p95 < 100 ms, 16 only 10/s.
BATCH_MAX = 4


def _is_arrival(topic: str) -> bool:
    try:
        return topics.parse(topic).message == "arrival"
    except topics.TopicError:
        return False


class IngestWorker:
    """The cloud process's one MQTT connection: it subscribes to what devices and screens send
    (``topics.cloud_ingest``) and publishes guide cards and label flashes; the process's other
    senders (edge commands, health alerts, markdown label redraws) publish on the same ``client``
    from their own threads (paho's publish is thread-safe), so the broker sees one client id per
    cloud process. ``start`` connects it and ``stop`` disconnects it, after the others stopped.
    """

    def __init__(
        self,
        processor: EventProcessor,
        broker: transport.BrokerUrl,
        *,
        client_id: str,
        card_ttl_s: int,
        share_group: str | None = None,
        session_expiry_s: int | None = None,
        flasher: ArrivalFlasher | None = None,
    ) -> None:
        self._processor = processor
        self._flasher = flasher  # shelf labels of a member card's recommendations
        self._broker = broker
        self._card_ttl_s = card_ttl_s
        self._inbox: queue.Queue[_Received | None] = queue.Queue()
        self._held: list[_Received | None] = []  # taken from the inbox, not part of the batch before it
        self._batch_max = BATCH_MAX if processor.batches else 1
        self._thread = threading.Thread(target=self._run, name="cloud-ingest", daemon=True)
        self._filters = topics.cloud_ingest(share_group)
        self._filter = ", ".join(self._filters)
        self._subscribed = threading.Event()
        self._refusals: list[str] = []
        # Each message is acknowledged to the broker only once processed (stored, card handed to
        # paho): a process killed with events in its inbox gets them again from the broker when its
        # session resumes (``session_expiry_s`` with a stable ``client_id``), instead of losing them.
        self._session_expiry_s = session_expiry_s
        self._connection = 0  # counts disconnects: an ack is only valid on the connection it came on
        self._client = transport.make_client(broker, client_id, clean=session_expiry_s is None, manual_ack=True)
        transport.subscribe_on_connect(self._client, [(f, 1) for f in self._filters])
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    @property
    def client(self) -> mqtt.Client:
        """The connection, for the process's other senders to publish on (never to subscribe)."""
        return self._client

    @property
    def processor(self) -> EventProcessor:
        """What handles each message, for the runtime to wire the features' hooks into."""
        return self._processor

    def counts(self) -> IngestCounts:
        return self._processor.counters.snapshot()

    def backlog(self) -> int:
        return self._inbox.qsize()

    def start(self, *, timeout: float = 10.0) -> None:
        """Connect and subscribe, then start working.

        Returns only once the broker confirmed the subscription, so an arrival published after
        this returns is never missed; raises ConnectionError when the broker does not answer or
        refuses the subscription (a broker without shared subscriptions, an ACL).
        """
        self._thread.start()
        try:
            transport.start(self._client, self._broker, timeout=timeout, session_expiry_s=self._session_expiry_s)
            if not self._subscribed.wait(timeout) or self._refusals:
                transport.stop(self._client)
                reason = self._refusals[0] if self._refusals else f"no SUBACK within {timeout:.0f} s"
                raise ConnectionError(f"broker {self._broker} refused subscription {self._filter}: {reason}")
        except ConnectionError:
            self._inbox.put(_STOP)
            self._thread.join()
            raise
        log.info("ingesting device events from %s (%s)", self._broker, self._filter)

    def stop(self) -> None:
        """Stop taking new arrivals, finish and publish the ones received, then disconnect.

        A persistent session keeps its subscriptions: events for this worker wait at the broker
        while it restarts, and any it received but did not process yet are sent again.
        """
        if self._session_expiry_s is None:
            self._client.unsubscribe(self._filters)
        self._inbox.put(_STOP)
        self._thread.join()
        transport.stop(self._client)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, reason_codes: list[ReasonCode], properties: object
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self._refusals.extend(refused)
            log.error("broker refused subscription %s: %s", self._filter, ", ".join(refused))
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put((message.topic, bytes(message.payload), message.mid, message.qos, self._connection))

    def _on_disconnect(self, client: mqtt.Client, userdata: object, *args: object) -> None:
        self._connection += 1

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            routed = self._processor.route_batch([item[:2] for item in batch]) if len(batch) > 1 else None
            for n, (topic, payload, mid, qos, connection) in enumerate(batch):
                try:
                    outgoing = routed[n] if routed is not None else self._processor.route_retrying(topic, payload)
                    if outgoing is not None:
                        self._publish(outgoing)
                except Exception:
                    self._processor.counters.add("errors")
                    log.exception("arrival on %s failed; carrying on", topic)
                # Acknowledged once stored: a batch's messages once the batch committed. After a reconnect
                # the broker re-sends what was not acknowledged, under its own ids (or the same ones, in a
                # resumed session): an old id must not acknowledge a new message.
                if qos and connection == self._connection:
                    self._client.ack(mid, qos)

    def _next_batch(self) -> list[_Received] | None:
        """The next message and, if it is an arrival, the arrivals waiting right behind it (up to
        ``BATCH_MAX``, where a batch is one transaction: ``EventProcessor.route_batch``); None once
        stopped. Batches form only when arrivals queue up faster than they are stored, so a quiet
        store's card never waits for a batch."""
        item = self._held.pop() if self._held else self._inbox.get()
        if item is _STOP:
            return None
        batch = [item]
        if self._batch_max == 1 or not _is_arrival(item[0]):
            return batch
        while len(batch) < self._batch_max:
            try:
                waiting = self._inbox.get_nowait()
            except queue.Empty:
                break
            if waiting is _STOP or not _is_arrival(waiting[0]):
                self._held.append(waiting)  # next round's, after this batch
                break
            batch.append(waiting)
        return batch

    def publish(self, card: GuideCard) -> None:
        """Publish a card made outside the ingest (a visitor who just joined: ``cloud.arrivals.joining``)
        to every screen of the store, where it takes the place of the visitor's card."""
        self._publish(Outgoing(card))

    def _publish(self, outgoing: Outgoing) -> None:
        card = outgoing.card
        if card.timings is not None:  # stored: what is left is the broker and the screen
            card = card.model_copy(update={"timings": metrics.reached(card.timings, "card")})
        info = transport.publish(
            self._client, topics.guide_card(card.brand, card.store, outgoing.screen), card, qos=1,
            expiry_s=self._card_ttl_s
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("card %s not sent yet: %s", card.card_id, mqtt.error_string(info.rc))
        self._processor.counters.add("cards")
        if self._flasher is not None:
            self._flasher.publish(self._client, card)
