"""The guide screen's MQTT side: cards and the store's floor in, presence, feedback and assistants' sign-ins out.

paho runs its network loop in its own thread, and Qt widgets may only be touched from the UI
thread, so ``CardFeed`` is a QObject bridge: paho's callbacks decode and filter, then emit Qt
signals, which Qt queues across to the UI thread. A bad payload is logged with its reason and
counted under it; it never reaches the screen and never stops the loop.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TypeVar

import paho.mqtt.client as mqtt
from PySide6.QtCore import QObject, Signal

from kiosk.guide_screen import metrics
from protocol import topics, transport
from protocol.codec import DecodeError, decode
from protocol.commands import CommandAck, EnrolCommand, EraseCommand
from protocol.device import FaceCrop, FaceEnrolment
from protocol.messages import (
    DeviceState,
    Feedback,
    FeedbackAction,
    GuideCard,
    GuideTask,
    GuideTaskDone,
    Message,
    StaffAction,
    StaffFloor,
    StaffSign,
    new_id,
    now,
)

M = TypeVar("M", bound=Message)

log = logging.getLogger(__name__)

#: paho doubles its reconnect delay up to this; a store screen should recover within seconds.
RECONNECT_MAX_S = 4
#: How often the UI thread says the screen is alive (``heartbeat``); the cloud calls it stale after 120 s.
HEARTBEAT_S = 30
#: How long ``stop`` waits for the retained "offline" state to reach the broker.
GOODBYE_TIMEOUT_S = 2.0


def device_id(screen: str) -> str:
    """The screen's device level in the topic tree: prefixed so it cannot clash with a box id."""
    return topics.check_id("device", f"kiosk-{screen}")


def crops_of_store(brand: str, store: str) -> str:
    """Every edge box's live face crops in one store: ``.../local/crop/+`` (see ``edge.crop``)."""
    return topics.local_crops_of_store(brand, store)


@dataclass
class FeedStats:
    """Counters written by the paho thread, read by the UI and tests (ints are GIL-safe)."""

    received: int = 0
    rejected: int = 0
    #: ``rejected`` by reason: invalid_payload (not a card or crop), topic_mismatch (another
    #: store's card, another box's crop), bad_topic.
    rejected_by_reason: Counter = field(default_factory=Counter)
    for_other_screen: int = 0
    feedback_sent: int = 0
    staff_signs_sent: int = 0
    crops: int = 0


class CardFeed(QObject):
    """Subscribes to one store's guide cards and hands those meant for this screen to the UI."""

    card_received = Signal(object)  # GuideCard
    #: A live face crop from the store's edge boxes (store-local topic); the screen decides whether
    #: it may be shown (only beside the member card of the same arrival).
    crop_received = Signal(object)  # FaceCrop
    connection_changed = Signal(bool)
    #: The broker acknowledged the card subscription: from now on no card for this screen is missed.
    subscribed = Signal()
    #: An erase command for this screen (cloud erasure or consent withdrawn): drop the members' cards,
    #: then ``acknowledge`` it.
    erase_received = Signal(object)  # EraseCommand
    #: A campaign's or journey's task for this store's guides (``kiosk.guide_screen.tasks`` shows it).
    task_received = Signal(object)  # GuideTask
    #: A guide tapped 完成 on a task, on this screen or another of the store (the cloud passes it on):
    #: the task leaves the strip.
    task_done_received = Signal(object)  # GuideTaskDone
    #: The cloud's enrol command: a visitor this screen invited joined with face consent; answer
    #: with ``answer_enrolment`` and the crop the screen kept (issue 21).
    enrol_received = Signal(object)  # EnrolCommand
    #: Who is on the store's floor, as the cloud says after each sign-in or sign-out on any of its screens
    #: (retained: also at every connect); ``kiosk.guide_screen.staff`` shows it.
    floor_received = Signal(object)  # StaffFloor

    def __init__(
        self, url: transport.BrokerUrl, brand: str, store: str, screen: str, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.url = url
        self.brand, self.store, self.screen = brand, store, screen
        self.stats = FeedStats()
        self.connected = False
        # Message ids of feedback sent and of those the broker acknowledged (set.add is atomic, so
        # the paho thread and the UI thread need no lock; pruning tolerates a late ack).
        self._sent_mids: set[int] = set()
        self._acked_mids: set[int] = set()
        self._device = device_id(screen)
        self._state_topic = topics.device_state(brand, store, self._device)
        self._cards_topic = topics.guide_cards_of_store(brand, store)
        self._crops_topic = crops_of_store(brand, store)
        self._erase_topic = topics.device_command(brand, store, self._device, "erase")
        self._tasks_topic = topics.guide_tasks_of_store(brand, store)
        self._enrol_topic = topics.device_command(brand, store, self._device, "enrol")
        self._floor_topic = topics.guide_floor(brand, store)
        self._cards_mid: int | None = None
        self._client = transport.make_client(
            url, f"{self._device}-{brand}-{store}", will=(self._state_topic, self._state("offline"))
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = lambda client, userdata, mid, *_: self._acked_mids.add(mid)

    def start(self) -> None:
        """Begin connecting in the background and return at once.

        Unlike ``transport.start`` this does not wait for, or give up on, the first CONNACK: a
        screen must come up and show its offline banner even when the broker is not there yet,
        and paho keeps retrying the first connection as it does every later one.
        """
        if self.url.mqtt5:
            self._client.connect_async(self.url.host, self.url.port, keepalive=15, clean_start=True)
        else:
            self._client.connect_async(self.url.host, self.url.port, keepalive=15)
        self._client.loop_start()

    def stop(self) -> None:
        """Say goodbye: a retained "offline" (a clean disconnect does not fire the Last Will)."""
        unsent = self.unacknowledged_feedback()
        if unsent:
            log.warning("%d feedback messages not yet acknowledged by the broker are lost", unsent)
        if self.connected:
            info = transport.publish(self._client, self._state_topic, self._state("offline"), retain=True)
            info.wait_for_publish(GOODBYE_TIMEOUT_S)
        self.connected = False  # so the disconnect below is not logged as a lost broker
        transport.stop(self._client)

    def heartbeat(self) -> None:
        """Say "online" again (retained, like the first). Called by a timer on the UI thread, not by
        paho's: a frozen screen stops saying it while its network thread still answers the broker's
        pings, so the cloud's device health sees the freeze (``cloud.health.device_health``)."""
        if self.connected:
            transport.publish(self._client, self._state_topic, self._state("online"), retain=True)

    def send_feedback(
        self, card: GuideCard, action: FeedbackAction, assistant: str | None = None, amount: float | None = None,
        receipt: str | None = None, invitation: str | None = None,
    ) -> None:
        """Tell the cloud what the assistant did with a card; a 成交 may name the till's receipt
        number, which the till's order then confirms (``cloud.arrivals.till``); an 邀请入会 carries
        the token the screen's QR code shows (``cloud.arrivals.joining``).

        QoS 1: while the broker is unreachable paho keeps the message in this process's memory
        and sends it after the reconnect, in order. A screen that is switched off while offline
        loses what it had queued; that is accepted for a screen (the sale itself is recorded by
        the till), and the log says how many were waiting.
        """
        feedback = Feedback(
            feedback_id=new_id(),
            card_id=card.card_id,
            visit_id=card.visit_id,
            brand=self.brand,
            store=self.store,
            screen=self.screen,
            action=action,
            assistant=assistant,
            amount=amount,
            receipt=receipt if action == "sold" else None,
            invitation=invitation if action == "invited" else None,
            ts=now(),
        )
        topic = topics.guide_feedback(self.brand, self.store, self.screen)
        self._sent_mids.add(transport.publish(self._client, topic, feedback, qos=1).mid)
        self.stats.feedback_sent += 1
        waiting = self.unacknowledged_feedback()
        if self.connected:
            log.info("feedback %s on card %s", action, card.card_id)
        else:
            log.warning("feedback %s on card %s queued until the broker is back (%d waiting)",
                        action, card.card_id, waiting)

    def send_task_done(self, task_id: str, assistant: str | None = None) -> None:
        """Tell the cloud a guide tapped 完成 on a task (on this screen's feedback topic, QoS 1 like a
        card's feedback); the cloud records it and takes the task off the store's other screens."""
        done = GuideTaskDone(task_id=task_id, brand=self.brand, store=self.store, screen=self.screen,
                             assistant=assistant, ts=now())
        topic = topics.guide_feedback(self.brand, self.store, self.screen)
        self._sent_mids.add(transport.publish(self._client, topic, done, qos=1).mid)
        self.stats.feedback_sent += 1
        log.info("task %s done", task_id)

    def send_staff_sign(self, assistant: str, action: StaffAction, sign_id: str) -> None:
        """An assistant signed in (上岗) or out (离岗) on this screen: to the cloud on the screen's staff topic,
        QoS 1 and queued while offline like a card's feedback (``unacknowledged_feedback`` counts it too). The
        id is the strip's: the cloud's floor names the sign it follows, so the strip knows its tap is in it."""
        sign = StaffSign(sign_id=sign_id, brand=self.brand, store=self.store, screen=self.screen, assistant=assistant,
                         action=action, ts=now())
        topic = topics.guide_staff(self.brand, self.store, self.screen)
        self._sent_mids.add(transport.publish(self._client, topic, sign, qos=1).mid)
        self.stats.staff_signs_sent += 1
        if self.connected:
            log.info("%s %s", assistant, action)
        else:
            log.warning("%s %s queued until the broker is back (%d waiting)", assistant, action,
                        self.unacknowledged_feedback())

    def unacknowledged_feedback(self) -> int:
        """Feedback messages (and sign-ins) the broker has not acknowledged yet (queued while offline, or in flight)."""
        done = self._sent_mids & self._acked_mids
        self._sent_mids -= done
        self._acked_mids -= done
        return len(self._sent_mids)

    def _state(self, state: str) -> DeviceState:
        return DeviceState(
            brand=self.brand, store=self.store, device=self._device, role="kiosk", state=state, ts=now()
        )

    # paho callbacks: they run on paho's network thread and only emit signals.

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the connection: %s", self.url, reason_code)
            return
        self._cards_mid = client.subscribe(self._cards_topic, qos=1)[1]
        client.subscribe(self._crops_topic, qos=0)  # separately: a refused crop filter must not cost the cards
        client.subscribe(self._erase_topic, qos=1)
        client.subscribe(self._tasks_topic, qos=1)
        client.subscribe(self._enrol_topic, qos=1)
        client.subscribe(self._floor_topic, qos=1)
        transport.publish(client, self._state_topic, self._state("online"), retain=True)
        log.info("connected to %s, listening on %s", self.url, self._cards_topic)
        self.connected = True
        self.connection_changed.emit(True)

    def _on_disconnect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        if self.connected:
            log.warning("lost broker %s: %s; reconnecting", self.url, reason_code)
        self.connected = False
        self.connection_changed.emit(False)

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if mid != self._cards_mid:
            if refused:
                log.warning("broker refused the face-crop subscription %s (%s); cards show without live crops",
                            self._crops_topic, refused[0])
            return
        if refused:
            log.error("broker refused the subscription to %s: %s", self._cards_topic, refused[0])
            return
        self.subscribed.emit()

    def _on_message(self, client: mqtt.Client, userdata, msg: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        if msg.topic.startswith(self._crops_topic[:-1]):
            self._on_crop(msg)
            return
        if msg.topic == self._erase_topic:
            self._on_erase(msg)
            return
        if msg.topic == self._enrol_topic:
            self._on_enrol(msg)
            return
        if msg.topic == self._floor_topic:
            self._on_floor(msg)
            return
        if msg.topic.endswith("/task"):
            self._on_task(msg)
            return
        try:
            target = topics.parse(msg.topic).path[0]
            card = decode(bytes(msg.payload), GuideCard)
        except topics.TopicError as exc:
            self._reject(msg.topic, "bad_topic", str(exc))
            return
        except DecodeError as exc:
            self._reject(msg.topic, "invalid_payload", str(exc))
            return
        if (card.brand, card.store) != (self.brand, self.store):
            self._reject(msg.topic, "topic_mismatch", f"card for {card.brand}/{card.store} on this store's topic")
            return
        if target not in (self.screen, topics.ALL_SCREENS):
            self.stats.for_other_screen += 1
            return
        metrics.carried(card)
        metrics.reached(card, "received", now())
        self.card_received.emit(card)

    def _on_crop(self, msg: mqtt.MQTTMessage) -> None:
        if (crop := self._decoded(msg, FaceCrop)) is None:
            return
        if (crop.brand, crop.store, crop.device) != (self.brand, self.store, msg.topic.rsplit("/", 1)[-1]):
            self._reject(msg.topic, "topic_mismatch", f"crop from {crop.brand}/{crop.store}/{crop.device} on this topic")
            return
        self.stats.crops += 1
        self.crop_received.emit(crop)

    def _on_task(self, msg: mqtt.MQTTMessage) -> None:
        """A task, or a guide's 完成 on one passed on by the cloud (same topic: the store's tasks)."""
        task: GuideTask | GuideTaskDone
        try:
            target = topics.parse(msg.topic).path[0]
            try:
                task = decode(bytes(msg.payload), GuideTask)
            except DecodeError as exc:
                if exc.field != "type":
                    raise
                task = decode(bytes(msg.payload), GuideTaskDone)
        except (topics.TopicError, DecodeError) as exc:
            self._reject(msg.topic, "invalid_payload", str(exc))
            return
        if (task.brand, task.store) != (self.brand, self.store):
            self._reject(msg.topic, "topic_mismatch", f"task for {task.brand}/{task.store} on this store's topic")
            return
        if target in (self.screen, topics.ALL_SCREENS):
            (self.task_received if isinstance(task, GuideTask) else self.task_done_received).emit(task)

    def _on_floor(self, msg: mqtt.MQTTMessage) -> None:
        if (floor := self._decoded(msg, StaffFloor)) is None:
            return
        if (floor.brand, floor.store) != (self.brand, self.store):
            self._reject(msg.topic, "topic_mismatch", f"floor of {floor.brand}/{floor.store} on this store's topic")
            return
        self.floor_received.emit(floor)

    def _on_erase(self, msg: mqtt.MQTTMessage) -> None:
        if (command := self._decoded(msg, EraseCommand)) is None:
            return
        if (command.brand, command.store, command.device) != (self.brand, self.store, self._device):
            self._reject(msg.topic, "topic_mismatch", "erase command addressed to another screen")
            return
        self.erase_received.emit(command)

    def _on_enrol(self, msg: mqtt.MQTTMessage) -> None:
        if (command := self._decoded(msg, EnrolCommand)) is None:
            return
        if (command.brand, command.store, command.device) != (self.brand, self.store, self._device):
            self._reject(msg.topic, "topic_mismatch", "enrol command addressed to another screen")
            return
        self.enrol_received.emit(command)

    def answer_enrolment(self, command: EnrolCommand, crop: FaceCrop | None) -> None:
        """The invited visitor's crop to the cloud, now that they consented (the cloud records its
        enrolment as the command's ack); without one, a refusal saying so."""
        if crop is None:
            ack = CommandAck(command_id=command.command_id, brand=self.brand, store=self.store, device=self._device,
                             name="enrol", ok=False, detail="no live crop of this arrival is held here", ts=now())
            transport.publish(self._client, topics.device_command_ack(self.brand, self.store, self._device, "enrol"),
                              ack, qos=1)
            return
        face = FaceEnrolment(brand=self.brand, store=self.store, device=self._device, command_id=command.command_id,
                             arrival_event_id=command.arrival_event_id, member_id=command.member_id, ts=now(),
                             jpeg=crop.jpeg)
        transport.publish(self._client, topics.face_enrolment(self.brand, self.store, self._device), face, qos=1)
        log.info("live crop of arrival %s sent for enrolment (command %s)", command.arrival_event_id, command.command_id)

    def acknowledge(self, command: EraseCommand, dropped: int) -> None:
        """Tell the cloud the erase is done on this screen (its receipt lists this answer)."""
        ack = CommandAck(command_id=command.command_id, brand=self.brand, store=self.store, device=self._device,
                         name="erase", ok=True, detail=f"dropped {dropped} cards", ts=now())
        transport.publish(self._client, topics.device_command_ack(self.brand, self.store, self._device, "erase"), ack)

    def _decoded(self, msg: mqtt.MQTTMessage, kind: type[M]) -> M | None:
        """The message as ``kind``, or None once it is rejected as ``invalid_payload`` with the reason."""
        try:
            return decode(bytes(msg.payload), kind)
        except DecodeError as exc:
            self._reject(msg.topic, "invalid_payload", str(exc))
            return None

    def _reject(self, topic: str, reason: str, detail: str) -> None:
        self.stats.rejected_by_reason[reason] += 1
        self.stats.rejected += 1
        log.warning("rejected message on %s: %s: %s (%d rejected so far)", topic, reason, detail, self.stats.rejected)
