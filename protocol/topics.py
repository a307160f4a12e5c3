"""The versioned MQTT topic tree.

Every topic starts ``instore/v1/{brand}/{store}``; the next level names a device (edge box) or a
store-wide function (``guide``, ``esl``, ``local``, ``health``). Identifiers are restricted so that
no id can smuggle a ``/``, ``+`` or ``#`` into a topic and widen what a subscriber or an ACL matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "instore/v1"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: Everything the cloud ingests from edge boxes, across all brands and stores.
ALL_DEVICE_EVENTS = f"{ROOT}/+/+/+/evt/#"
#: The cloud reads device states to know which boxes are online.
ALL_DEVICE_STATES = f"{ROOT}/+/+/+/state"
#: Every device's telemetry (not retained, so it may go through a share group like events).
ALL_TELEMETRY = f"{ROOT}/+/+/+/telemetry"
#: Every box's answers to the cloud's commands (erase, pack).
ALL_COMMAND_ACKS = f"{ROOT}/+/+/+/cmd/+/ack"
#: The guide screens' feedback, all stores.
ALL_FEEDBACK = f"{ROOT}/+/+/guide/+/feedback"
#: The guide screens' staff sign-ins and sign-outs (上岗/离岗), all stores.
ALL_STAFF_SIGNS = f"{ROOT}/+/+/guide/+/staff"
#: Every store's health alerts, for HQ.
ALL_HEALTH_ALERTS = f"{ROOT}/+/+/health/alert"
#: Devices whose level is a store-wide function, not a box.
STORE_FUNCTIONS = frozenset({"guide", "esl", "local", "health"})
#: The screen id a card goes to when it is meant for every guide screen of the store.
ALL_SCREENS = "all"


class TopicError(ValueError):
    """A topic or an identifier that does not belong to the tree."""


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise TopicError(
            f"{kind} id {value!r} must be 1-64 characters of letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    if value in STORE_FUNCTIONS and kind == "device":
        raise TopicError(f"device id {value!r} is reserved for a store-wide topic level")
    return value


def _store(brand: str, store: str) -> str:
    return f"{ROOT}/{check_id('brand', brand)}/{check_id('store', store)}"


def _device(brand: str, store: str, device: str) -> str:
    """The level of one edge box (or other device) under its store; its topics hang below."""
    return f"{_store(brand, store)}/{check_id('device', device)}"


def _screen(brand: str, store: str, screen: str) -> str:
    """The level of one guide screen (or ``ALL_SCREENS``) under its store's ``guide``."""
    return f"{_store(brand, store)}/guide/{check_id('screen', screen)}"


def device_state(brand: str, store: str, device: str) -> str:
    return f"{_device(brand, store, device)}/state"


def arrival(brand: str, store: str, device: str) -> str:
    return f"{_device(brand, store, device)}/evt/arrival"


def presence(brand: str, store: str, device: str) -> str:
    return f"{_device(brand, store, device)}/evt/presence"


def footfall(brand: str, store: str, device: str) -> str:
    return f"{_device(brand, store, device)}/evt/footfall"


def till_order(brand: str, store: str, device: str) -> str:
    """A store till's order (``protocol.till.TillOrder``), QoS 1."""
    return f"{_device(brand, store, device)}/evt/order"


def face_enrolment(brand: str, store: str, device: str) -> str:
    """A guide screen's consented live crop for enrolment (``protocol.device.FaceEnrolment``)."""
    return f"{_device(brand, store, device)}/evt/face"


def telemetry(brand: str, store: str, device: str) -> str:
    return f"{_device(brand, store, device)}/telemetry"


def config_desired(brand: str, store: str, device: str) -> str:
    """Retained: what the cloud wants the device's configuration to be."""
    return f"{_device(brand, store, device)}/cfg/desired"


def config_reported(brand: str, store: str, device: str) -> str:
    """Retained: the configuration the device actually runs."""
    return f"{_device(brand, store, device)}/cfg/reported"


def device_command(brand: str, store: str, device: str, name: str) -> str:
    return f"{_device(brand, store, device)}/cmd/{check_id('command', name)}"


def device_command_ack(brand: str, store: str, device: str, name: str) -> str:
    return f"{device_command(brand, store, device, name)}/ack"


def store_local(brand: str, store: str, *levels: str) -> str:
    """Store-local topics (live face crops): never bridged to the cloud."""
    return "/".join([_store(brand, store), "local", *(check_id("level", level) for level in levels)])


def local_crop(brand: str, store: str, device: str) -> str:
    """One edge box's live face crops for its store's guide screens (store-local, never the cloud)."""
    return store_local(brand, store, "crop", check_id("device", device))


def local_crops_of_store(brand: str, store: str) -> str:
    """What a guide screen subscribes to for crops: every box of its store."""
    return f"{store_local(brand, store, 'crop')}/+"


def guide_card(brand: str, store: str, screen: str = ALL_SCREENS) -> str:
    return f"{_screen(brand, store, screen)}/card"


def guide_cards_of_store(brand: str, store: str) -> str:
    """What a guide screen subscribes to: cards for every screen of its store."""
    return f"{_store(brand, store)}/guide/+/card"


def guide_task(brand: str, store: str, screen: str = ALL_SCREENS) -> str:
    """A campaign's or journey's task for the store's guides (cloud -> guide screens)."""
    return f"{_screen(brand, store, screen)}/task"


def guide_tasks_of_store(brand: str, store: str) -> str:
    """What a guide screen subscribes to for tasks: every screen's of its store."""
    return f"{_store(brand, store)}/guide/+/task"


def guide_feedback(brand: str, store: str, screen: str) -> str:
    return f"{_screen(brand, store, screen)}/feedback"


def guide_staff(brand: str, store: str, screen: str) -> str:
    """An assistant's sign-in or sign-out on one guide screen (``protocol.messages.StaffSign``), QoS 1."""
    return f"{_screen(brand, store, screen)}/staff"


def guide_floor(brand: str, store: str) -> str:
    """Retained: who is on the store's floor (``protocol.messages.StaffFloor``, cloud -> every guide screen of
    the store), one topic a store, so a screen that connects later reads the floor at once."""
    return f"{_screen(brand, store, ALL_SCREENS)}/floor"


def health_alert(brand: str, store: str) -> str:
    """The store's anomaly alerts (cloud -> HQ and the store's dashboard)."""
    return f"{_store(brand, store)}/health/alert"


def label_command(brand: str, store: str, label: str) -> str:
    """One e-shelf label's commands (cloud -> the store's ESL gateway)."""
    return f"{_store(brand, store)}/esl/{check_id('label', label)}/cmd"


def label_commands_of_store(brand: str, store: str) -> str:
    """What a store's ESL gateway subscribes to: every label's commands."""
    return f"{_store(brand, store)}/esl/+/cmd"


def shared(topic_filter: str, group: str) -> str:
    """A shared subscription: the broker hands each message to one member of the group."""
    return f"$share/{check_id('group', group)}/{topic_filter}"


def cloud_ingest(share_group: str | None = None) -> list[str]:
    """What the cloud's ingest subscribes to: device events, telemetry, guide-screen feedback, staff
    sign-ins and command acks (through the share group, if any, so several cloud workers split them), and
    device states, never shared: they are retained, and a retained message never reaches a shared
    subscription, so every worker reads them."""
    spread = [ALL_DEVICE_EVENTS, ALL_TELEMETRY, ALL_FEEDBACK, ALL_STAFF_SIGNS, ALL_COMMAND_ACKS]
    return [*(shared(f, share_group) if share_group else f for f in spread), ALL_DEVICE_STATES]


@dataclass(frozen=True)
class TopicInfo:
    brand: str
    store: str
    device: str
    path: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "/".join(self.path)

    @property
    def message(self) -> str | None:
        """What kind of message the topic carries, for dispatch: one of ``MESSAGES``, or None."""
        path = self.path
        if self.kind in _BY_PATH:
            return _BY_PATH[self.kind]
        if self.device == "guide" and len(path) == 2 and path[1] in _BY_SCREEN_LEVEL:
            return _BY_SCREEN_LEVEL[path[1]]
        if len(path) == 3 and path[0] == "cmd" and path[2] == "ack":
            return "command_ack"
        return None


#: Message kinds a topic names (``TopicInfo.message``), by the levels after the device.
_BY_PATH = {"evt/arrival": "arrival", "evt/presence": "presence", "evt/footfall": "footfall",
            "evt/order": "order", "evt/face": "face_enrolment", "state": "state", "telemetry": "telemetry"}
#: ... and by the level after a guide screen's id (``guide/{screen}/...``), what the screens send
_BY_SCREEN_LEVEL = {"feedback": "feedback", "staff": "staff_sign"}
MESSAGES = frozenset({*_BY_PATH.values(), *_BY_SCREEN_LEVEL.values(), "command_ack"})


def parse(topic: str) -> TopicInfo:
    """Split a concrete topic into its levels; raises TopicError for anything outside the tree."""
    parts = topic.split("/")
    if len(parts) < 6 or "/".join(parts[:2]) != ROOT:
        raise TopicError(f"topic {topic!r} is not under {ROOT}/<brand>/<store>/<device>/...")
    brand, store, device = parts[2], parts[3], parts[4]
    for kind, value in (("brand", brand), ("store", store)):
        check_id(kind, value)
    if not _ID.match(device):
        raise TopicError(f"topic {topic!r} has an invalid device level {device!r}")
    return TopicInfo(brand=brand, store=store, device=device, path=tuple(parts[5:]))
