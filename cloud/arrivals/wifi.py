"""Wi-Fi on the cloud side: registered phones, presence events joined to visits, footfall minutes.

Only ``device_key(mac, brand secret)`` is ever stored: a member types a MAC, the key is computed
and the MAC is forgotten in the same request. The key is a soft identifier (``kind = 'mac'``) in
the identity graph: it attaches to one person and never links two; a key already held by another
person is refused, so one phone cannot announce two members.

A presence ``enter`` of a registered key and a face arrival of the same person in the same store
within ``window_s`` are one visit: whichever comes second joins the first. How much the phone
says about a face is ``cloud.arrivals.fusion``'s likelihood ratio, estimated from labelled
visits (it replaced a fixed noisy-OR); a visit keeps the face's cosine as ``confidence`` and the
fused posterior beside it. Only a face produces a guide card; a Wi-Fi-only visit has none, because a
phone can be carried by someone else and the enter fires only after the edge's dwell rule, when
the door moment has passed. So face + Wi-Fi can never give two cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import ClassVar, Literal

from cloud.cdp import oneid
from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.errors import CodedError
from protocol.wifi import MacError, WifiFootfall, WifiPresence, device_key

KIND = "mac"
#: The confidence of a Wi-Fi-only visit (no face, no card): a registered phone alone (documented heuristic).
WIFI_CONFIDENCE = 0.5
WIFI_CAMERA = "wifi"

PresenceOutcome = Literal["unknown_key", "duplicate", "opened", "joined", "closed", "no_visit"]
#: A member's registered phone at a store at some moment (``phone_state``); None: no registered phone.
Phone = Literal["present", "absent"]


class DeviceRegistrationError(CodedError):
    """A phone that cannot be registered: a malformed MAC (422), one taken by another person or a
    brand secret unfit to key it (409)."""

    status = HTTPStatus.CONFLICT
    statuses: ClassVar[dict[str, int]] = {"invalid_mac": HTTPStatus.UNPROCESSABLE_ENTITY}


@dataclass(frozen=True)
class Registered:
    device_key: str
    created: bool


def register_device(db: Database, person: str, mac: str, secret: bytes) -> Registered:
    """Key the MAC, store the key on the person, forget the MAC. Raises DeviceRegistrationError."""
    try:
        key = device_key(mac, secret)
    except MacError as exc:
        raise DeviceRegistrationError("invalid_mac", str(exc)) from None
    except ValueError as exc:  # secret too short: a configuration fault, not the caller's
        raise DeviceRegistrationError("wifi_secret_invalid", str(exc)) from None
    return bind_key(db, person, key)


def bind_key(db: Database, person: str, key: str) -> Registered:
    """A device key (a stable MAC's, or a per-network address's from the guest Wi-Fi login,
    ``cloud.arrivals.guest_wifi``) on the person; one held by another person is refused."""
    with db.transaction() as tx:
        holder = person_for_key(tx, key)
        if holder is not None and holder != person:
            raise DeviceRegistrationError("device_taken", "this device is registered to another member")
        if holder == person:
            return Registered(key, created=False)
        oneid.add_identifiers(tx, person, [(KIND, key)])
    return Registered(key, created=True)


def person_for_key(tx: Tx | Database, key: str) -> str | None:
    return tx.scalar(
        f"SELECT {PERSON_OF} FROM identifiers i JOIN members m ON m.id = i.member_id "
        "WHERE i.kind = ? AND i.value = ? AND i.blocked IS NULL ORDER BY m.created LIMIT 1",
        (KIND, key),
    )


def registered_keys(db: Database) -> list[str]:
    """Every registered key: what an edge box's ``--registered`` file holds."""
    return [r[0] for r in db.rows("SELECT DISTINCT value FROM identifiers WHERE kind = ? AND blocked IS NULL "
                                  "ORDER BY value", (KIND,))]


#: How far back an ``enter`` without a ``leave`` still means the phone is in the store (a lost leave
#: must not keep a phone "present" into the next day).
PRESENT_LOOKBACK_S = 4 * 3600


def phone_state(db: Database | Tx, person: str, store: str, at: datetime) -> Phone | None:
    """Whether ``person``'s registered phone is in ``store`` at ``at``: present (its last presence
    event there is an ``enter``), absent, or None when the person has no registered phone."""
    if db.scalar(f"SELECT 1 FROM identifiers i JOIN members m ON m.id = i.member_id WHERE {PERSON_OF} = ? "
                 "AND i.kind = 'mac' AND i.blocked IS NULL LIMIT 1", (person,)) is None:
        return None
    last = db.one("SELECT phase FROM presence_events WHERE member_id = ? AND store = ? AND ts BETWEEN ? AND ? "
                  "ORDER BY ts DESC LIMIT 1", (person, store, iso(at - timedelta(seconds=PRESENT_LOOKBACK_S)), iso(at)))
    return "present" if last is not None and last["phase"] == "enter" else "absent"


def wifi_only_visit(tx: Tx | Database, person: str, store: str, ts: datetime, window_s: int) -> dict | None:
    """The person's card-less Wi-Fi visit at ``store`` that a face arrival at ``ts`` joins."""
    window = timedelta(seconds=window_s)
    return tx.one(
        f"SELECT v.id, v.confidence FROM visits v JOIN members m ON m.id = v.member_id "
        f"WHERE {PERSON_OF} = ? AND v.store = ? AND v.signals = 'wifi' AND v.ts BETWEEN ? AND ? "
        "ORDER BY v.ts DESC LIMIT 1",
        (person, store, iso(ts - window), iso(ts + window)),
    )


def record_presence(db: Database, event: WifiPresence, *, window_s: int) -> PresenceOutcome:
    """Store one presence event of a registered key against its visit; unknown keys leave no trace."""
    with db.transaction() as tx:
        person = person_for_key(tx, event.device_key)
        if person is None:
            return "unknown_key"
        if tx.scalar("SELECT 1 FROM presence_events WHERE event_id = ?", (event.event_id,)):
            return "duplicate"
        if event.phase == "enter":
            visit_id, outcome = _enter(tx, person, event, window_s)
        else:
            visit_id = tx.scalar(
                "SELECT visit_id FROM presence_events WHERE member_id = ? AND store = ? AND phase = 'enter' "
                "AND visit_id IS NOT NULL ORDER BY ts DESC LIMIT 1", (person, event.store))
            changed = visit_id is not None and tx.execute(
                "UPDATE visits SET left_ts = ?, dwell_s = ? WHERE id = ? AND left_ts IS NULL",
                (iso(event.last_seen), event.dwell_s, visit_id))
            outcome = "closed" if changed else "no_visit"
        tx.execute(
            "INSERT INTO presence_events (event_id, brand, store, device, member_id, visit_id, phase, ts, dwell_s, "
            "received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.event_id, event.brand, event.store, event.device, person, visit_id, event.phase, iso(event.ts),
             event.dwell_s, iso(utcnow())))
        if event.phase == "enter":
            oneid.add_sighting(db, person, kind=KIND, value=event.device_key, score=WIFI_CONFIDENCE,
                               store=event.store, ts=event.ts)
    return outcome


def _enter(tx: Tx, person: str, event: WifiPresence, window_s: int) -> tuple[str, PresenceOutcome]:
    window = timedelta(seconds=window_s)
    visit = tx.one(
        f"SELECT v.id, v.confidence, v.signals FROM visits v JOIN members m ON m.id = v.member_id "
        f"WHERE {PERSON_OF} = ? AND v.store = ? AND v.ts BETWEEN ? AND ? AND v.left_ts IS NULL "
        "ORDER BY v.ts DESC LIMIT 1",
        (person, event.store, iso(event.first_seen - window), iso(event.ts + window)),
    )
    if visit is not None:
        if "wifi" not in visit["signals"]:  # a second edge box hearing the phone adds nothing
            tx.execute("UPDATE visits SET signals = ? WHERE id = ?", (f"{visit['signals']}+wifi", visit["id"]))
        return visit["id"], "joined"
    visit_id = oneid.new_record_id()
    tx.execute(
        "INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.event_id, event.brand, event.store, event.device, WIFI_CAMERA, iso(event.first_seen), iso(utcnow())))
    tx.execute(
        "INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, camera, card_id, "
        "signals) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', 'wifi')",
        (visit_id, event.brand, event.store, person, WIFI_CONFIDENCE, iso(event.first_seen), event.event_id,
         event.device, WIFI_CAMERA))
    return visit_id, "opened"


# footfall ----------------------------------------------------------------------------------------

Bucket = Literal["minute", "hour"]


def record_footfall(db: Database, minute: WifiFootfall) -> bool:
    """One box's minute, stored once; False for a repeat of a minute already stored."""
    return bool(db.execute(
        "INSERT INTO footfall (brand, store, device, minute, people, passing, visits_started, distinct_macs, "
        "background, probes, event_id, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (minute.brand, minute.store, minute.device, iso(minute.minute), minute.people, minute.passing,
         minute.visits_started, minute.distinct_macs, minute.background, minute.probes, minute.event_id,
         iso(utcnow()))))


def footfall_series(db: Database, store: str, start: datetime, end: datetime, bucket: Bucket) -> list[dict]:
    """People present (summed over the store's boxes per minute; mean and max per hour) and visits started."""
    rows = db.rows(
        "SELECT minute, SUM(people), SUM(passing), SUM(visits_started), SUM(distinct_macs) FROM footfall "
        "WHERE store = ? AND minute >= ? AND minute < ? GROUP BY minute ORDER BY minute",
        (store, iso(start), iso(end)))
    buckets: dict[str, dict] = {}
    for minute, people, passing, visits, macs in rows:
        ts = datetime.fromisoformat(minute)
        begin = ts if bucket == "minute" else ts.replace(minute=0)
        b = buckets.setdefault(iso(begin), {"start": begin.astimezone(UTC), "minutes": 0, "people_sum": 0,
                                            "people_max": 0, "passing": 0, "visits": 0, "distinct_macs": 0})
        b["minutes"] += 1
        b["people_sum"] += people
        b["people_max"] = max(b["people_max"], people)
        b["passing"] += passing
        b["visits"] += visits
        b["distinct_macs"] += macs
    return [
        {"start": b["start"], "minutes": b["minutes"], "people": round(b["people_sum"] / b["minutes"], 2),
         "people_max": b["people_max"], "passing": b["passing"], "visits": b["visits"],
         "distinct_macs": b["distinct_macs"]}
        for b in buckets.values()
    ]
