"""Assistants signing in (上岗) and out (离岗) on the guide screens: stored once, read as who is on the floor.

The roster (``shifts``) says who should be on the floor; before sign-ins the only trace of an
assistant being there was their card actions, which wait for customers (``cloud.health.staff_absent``
needed hours of others' work to call one absent). A sign-in is a fact at the moment it is tapped.

A sign counts for the store's local day it was made on: whoever is signed in is the one whose latest
sign of that day is ``sign_in``. A sign-in forgotten overnight therefore does not put anyone on
tomorrow's floor, and a break between two shifts of a day keeps an assistant on it unless they
signed out. The synthetic floor (``cloud.synthetic.floor``) writes its sign-ins through ``record_all``,
the statement behind ``record``, which the MQTT ingest calls.

An assistant is their staff-file id everywhere it is read (``day_signs``): a screen configured with
names (``instore kiosk --assistant 王静``) sends names, which resolve to the id of the one assistant of
the store with that name, so the roster check, the API and the screens' floor agree on who is who.

After each sign it stores, the ingest publishes the store's floor (``publish_floor``): retained on the
store's ``guide/all/floor`` topic, so every screen of the store, and one that starts later, shows
the same assistants on the floor whichever screen they signed in on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Literal

import paho.mqtt.client as mqtt

from cloud import clock
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from protocol import topics, transport
from protocol.messages import FloorAssistant, StaffAction, StaffFloor, StaffSign

SignOutcome = Literal["stored", "duplicate"]


def record(db: Database, sign: StaffSign) -> SignOutcome:
    """Store one sign-in or sign-out as it arrives (a repeat of its ``sign_id`` is a duplicate: QoS 1 re-sends).
    A sign is not made after it reached the cloud: a screen whose clock runs ahead has its sign stored at the
    cloud's time, or the floor read right after it (``publish_floor``) and the absence scans would not see it
    until the cloud's clock caught up, and the strip would drop the tap's mark for a floor without it."""
    now = utcnow()
    with db.transaction() as tx:
        return "stored" if record_all(tx, [sign if sign.ts <= now else sign.model_copy(update={"ts": now})]) \
            else "duplicate"


def record_all(tx: Tx, signs: Sequence[StaffSign]) -> int:
    """Store many signs in one statement per chunk (the synthetic floor's days of them: one insert a sign
    was a round trip each on PostgreSQL); how many were new (repeats of a ``sign_id`` are left out)."""
    received = iso(utcnow())
    rows = [(s.sign_id, s.brand, s.store, s.screen, s.assistant, s.action, iso(s.ts), received) for s in signs]
    # ``WHERE true``: SQLite's parser reads an ON after a bare SELECT's FROM as a join's
    return sum(tx.execute(
        "INSERT INTO staff_signs (sign_id, brand, store, screen, assistant, action, ts, received) "
        f"SELECT * FROM {relation} WHERE true ON CONFLICT DO NOTHING", params)
        for relation, params in tx.values(rows, ("text",) * 8))


def uses_sign_in(db: Database, store: str, now: datetime, days: int) -> bool:
    """Whether the store's screens were used to sign in within the ``days`` before ``now``: its roster is
    then checked against sign-ins, not against card actions."""
    return db.scalar("SELECT 1 FROM staff_signs WHERE store = ? AND ts > ? AND ts <= ? LIMIT 1",
                     (store, iso(now - timedelta(days=days)), iso(now))) is not None


@dataclass(frozen=True)
class Sign:
    ts: datetime  # UTC
    action: StaffAction
    screen: str


def names(db: Database, store: str, *, employed: bool = False) -> dict[str, str]:
    """The store's assistants' names by id (the staff file); with ``employed``, only those still employed
    (``active``)."""
    return dict(db.rows("SELECT id, name FROM assistants WHERE store = ?" + (" AND active = 1" if employed else ""),
                        (store,)))


def _ids_by_name(named: dict[str, str]) -> dict[str, str]:
    """A name a screen may send -> the id of the store's one employed assistant with that name (one who left
    does not make a colleague's name ambiguous). A name two of them share, or one that is another's id, names
    nobody: its signs stay under what was sent."""
    count = Counter(named.values())
    return {name: a for a, name in named.items() if count[name] == 1 and name not in named}


def day_signs(db: Database, store: str, tz: str | None, now: datetime) -> dict[str, list[Sign]]:
    """Each assistant's signs at the store from its local day's start to ``now``, in time order, by id (a
    sign under a name counts for the id it resolves to, ``_ids_by_name``)."""
    start = clock.day_start_utc(now.astimezone(clock.zone(tz)).date(), tz)
    ids = _ids_by_name(names(db, store, employed=True))
    out: dict[str, list[Sign]] = {}
    for assistant, action, ts, screen in db.rows(
            "SELECT assistant, action, ts, screen FROM staff_signs WHERE store = ? AND ts >= ? AND ts <= ? "
            "ORDER BY ts, sign_id", (store, iso(start), iso(now))):
        out.setdefault(ids.get(assistant, assistant), []).append(Sign(datetime.fromisoformat(ts), action, screen))
    return out


@dataclass(frozen=True)
class OnFloor:
    assistant: str
    name: str | None  # from the staff file, when the assistant is in it
    since: datetime  # UTC: their latest sign-in
    screen: str  # where they signed in


def on_floor(db: Database, store: str, now: datetime) -> list[OnFloor] | None:
    """The assistants signed in at the store now (their latest sign of the local day is a sign-in), by id;
    None when there is no such store."""
    found = db.rows("SELECT timezone FROM stores WHERE id = ?", (store,))
    return None if not found else _signed_in(db, store, found[0][0], now)


def _signed_in(db: Database, store: str, tz: str | None, now: datetime) -> list[OnFloor]:
    named = names(db, store)
    signs = day_signs(db, store, tz, now)
    return [OnFloor(a, named.get(a), s[-1].ts, s[-1].screen) for a, s in sorted(signs.items())
            if s[-1].action == "sign_in"]


def floor(db: Database, brand: str, store: str, now: datetime, sign_id: str | None = None) -> StaffFloor | None:
    """The store's floor for its screens: who is on it now, until the end of its local day, read after the sign
    ``sign_id`` was stored; None when there is no such store."""
    found = db.rows("SELECT timezone FROM stores WHERE id = ?", (store,))
    if not found:
        return None
    tz = found[0][0]
    until = clock.day_start_utc(now.astimezone(clock.zone(tz)).date() + timedelta(days=1), tz)
    return StaffFloor(brand=brand, store=store, sign_id=sign_id, ts=now, until=until, assistants=[
        FloorAssistant(**asdict(a)) for a in _signed_in(db, store, tz, now)])


def publish_floor(client: mqtt.Client, db: Database, sign: StaffSign) -> StaffFloor | None:
    """Tell every screen of the store who is on its floor now that ``sign`` is stored: retained (a screen that
    connects later reads it at once), QoS 1, expiring at the end of the store's local day with the floor
    itself. None (nothing sent) when the store is unknown here."""
    now = utcnow()
    state = floor(db, sign.brand, sign.store, now, sign.sign_id)
    if state is None:
        return None
    transport.publish(client, topics.guide_floor(sign.brand, sign.store), state, qos=1, retain=True,
                      expiry_s=int((state.until - now).total_seconds()))
    return state
