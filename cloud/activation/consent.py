"""Marketing consent per channel, the suppression list, unsubscribes, and the check every send makes.

Consent to be marketed to is per person and channel (``CHANNELS``), separate from face consent and
from membership: a member without a row has not consented (opt-in). Withdrawals come from the API,
from an SMS reply (退订/TD/T/N through the provider's uplink push, ``sms_uplink``) and from the link
in a message (``unsubscribe_token`` / ``unsubscribe``). The global suppression list holds phones,
e-mail addresses, openids or persons nobody may message, whatever they consented to.

``Policy.check`` answers, for one batch of sends, why each may not go: ``no_consent``,
``suppressed``, ``no_address``, ``quiet_hours`` (in the time zone of the person's home store),
``frequency_cap`` (sends to the person in the last 7 days); ``None`` means it may go. The in-store
channels (``IN_STORE``: an e-coupon) check suppression and the address only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.clock import iso, utcnow, zone
from cloud.db import Database, Tx
from cloud.errors import Invalid, NotFound

CHANNELS = ("sms", "wechat", "wecom", "email")
#: In-store channels: nothing reaches the member's phone (a coupon lands in their wallet, a task on
#: their home store's guide screens), so they need no marketing consent, keep no quiet hours and do
#: not count towards the weekly cap; the suppression list still holds.
IN_STORE = ("coupon", "guide_task")
#: What a campaign or a journey step may send on.
SEND_CHANNELS = (*CHANNELS, *IN_STORE)
#: The identifier kind that addresses a person on each channel (wecom: the guide's WeCom user).
ADDRESS_KIND = {"sms": "phone", "wechat": "openid", "email": "email"}
#: What an SMS reply must say to unsubscribe (case and spaces ignored).
UNSUBSCRIBE_WORDS = frozenset({"退订", "TD", "T", "N", "取消", "UNSUBSCRIBE"})
_CHUNK = 500


def _check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise Invalid(f"unknown marketing channel {channel!r} (one of {', '.join(CHANNELS)})", code="invalid_channel")
    return channel


def check_send_channel(channel: str) -> str:
    if channel not in SEND_CHANNELS:
        raise Invalid(f"unknown channel {channel!r} (one of {', '.join(SEND_CHANNELS)})", code="invalid_channel")
    return channel


def _person(tx: Tx | Database, member_id: str) -> str:
    row = tx.one("SELECT COALESCE(merged_into, id) AS person FROM members WHERE id = ?", (member_id,))
    if row is None:
        raise NotFound(f"no member {member_id}", code="unknown_member")
    return str(row["person"])


def set_consent(db: Database, member_id: str, channel: str, granted: bool, *, source: str, actor: str,
                store: str | None = None, now: datetime | None = None) -> dict:
    """Record a person's marketing consent on one channel (and its history in ``consent_log``)."""
    _check_channel(channel)
    ts = iso(now or utcnow())
    with db.transaction() as tx:
        person = _person(tx, member_id)
        _write(tx, person, channel, granted, source, ts)
        tx.execute("INSERT INTO consent_log (person_id, record_id, kind, granted, ts, store, actor, how) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (person, member_id, f"marketing:{channel}", int(granted), ts, store, actor, source))
    return {"person_id": person, "channel": channel, "granted": granted, "ts": ts, "source": source}


def _write(tx: Tx, person: str, channel: str, granted: bool, source: str, ts: str) -> None:
    tx.execute("DELETE FROM marketing_consent WHERE person_id = ? AND channel = ?", (person, channel))
    tx.execute("INSERT INTO marketing_consent (person_id, channel, granted, ts, source) VALUES (?, ?, ?, ?, ?)",
               (person, channel, int(granted), ts, source))


def latest(tx: Tx | Database, persons: Sequence[str], channels: Sequence[str]) -> dict[tuple[str, str], dict]:
    """``(id, channel)`` -> the latest decision on that channel of the person each id belongs to now,
    on any of their records.

    A decision is kept under the person id of its day; records merged since keep theirs. So the
    person's word is the newest row among all their records (a withdrawal on a tie), whichever
    record heads them now: a merge never turns a "no" back into an older "yes"."""
    found: dict[tuple[str, str], dict] = {}
    for start in range(0, len(persons), _CHUNK):
        chunk = list(persons[start:start + _CHUNK])
        heads = dict(tx.rows(f"SELECT id, COALESCE(merged_into, id) FROM members WHERE id IN "
                             f"({', '.join('?' for _ in chunk)})", chunk))
        people = sorted(set(heads.values()))
        if not people:
            continue
        marks = ", ".join("?" for _ in people)
        word: dict[tuple[str, str], dict] = {}
        for r in tx.query(
                f"SELECT COALESCE(m.merged_into, m.id) AS person, c.channel, c.granted, c.ts, c.source "
                f"FROM members m JOIN marketing_consent c ON c.person_id = m.id "
                f"WHERE (m.id IN ({marks}) OR m.merged_into IN ({marks})) "
                f"AND c.channel IN ({', '.join('?' for _ in channels)})", (*people, *people, *channels)):
            key = (r["person"], r["channel"])
            held = word.get(key)
            if held is None or (r["ts"], not r["granted"]) > (held["ts"], not held["granted"]):
                word[key] = r
        found.update({(asked, channel): word[(head, channel)] for asked, head in heads.items()
                      for channel in channels if (head, channel) in word})
    return found


def consents(db: Database, member_id: str) -> dict[str, dict]:
    person = _person(db, member_id)
    found = latest(db, [person], CHANNELS)
    return {c: {"granted": bool(r["granted"]), "ts": r["ts"], "source": r["source"]} if (r := found.get((person, c)))
            else {"granted": False, "ts": None, "source": None} for c in CHANNELS}


def suppress(db: Database, kind: str, value: str, *, reason: str, actor: str) -> None:
    if kind not in ("phone", "email", "openid", "person"):
        raise Invalid("suppression kind is phone, email, openid or person", code="invalid_suppression")
    with db.transaction() as tx:
        tx.execute("DELETE FROM marketing_suppression WHERE kind = ? AND value = ?", (kind, value))
        tx.execute("INSERT INTO marketing_suppression (kind, value, reason, ts, actor) VALUES (?, ?, ?, ?, ?)",
                   (kind, value, reason, iso(utcnow()), actor))


def unsuppress(db: Database, kind: str, value: str) -> bool:
    return db.execute("DELETE FROM marketing_suppression WHERE kind = ? AND value = ?", (kind, value)) > 0


def persons_with(tx: Tx | Database, kind: str, value: str) -> list[str]:
    return [r[0] for r in tx.rows(
        "SELECT DISTINCT COALESCE(m.merged_into, m.id) FROM identifiers i JOIN members m ON m.id = i.member_id "
        "WHERE i.kind = ? AND i.value = ?", (kind, value))]


def sms_uplink(db: Database, messages: Sequence[dict], *, now: datetime | None = None) -> list[dict]:
    """Aliyun's SmsUp push (a JSON array of ``phone_number``, ``send_time``, ``content``,
    ``sign_name``, ``dest_code``, ``sequence_id``): an unsubscribe word withdraws SMS consent of
    every person holding that phone. Every reply is kept with what it did."""
    ts = iso(now or utcnow())
    done: list[dict] = []
    with db.transaction() as tx:
        for message in messages:
            phone = str(message.get("phone_number") or "")[-11:]
            content = str(message.get("content") or "")
            word = content.strip().upper().replace(" ", "")
            action = "ignored"
            if phone and word in UNSUBSCRIBE_WORDS:
                persons = persons_with(tx, "phone", phone)
                for person in persons:
                    _write(tx, person, "sms", False, "sms_reply", ts)
                    tx.execute("INSERT INTO consent_log (person_id, record_id, kind, granted, ts, store, actor, how) "
                               "VALUES (?, ?, 'marketing:sms', 0, ?, NULL, ?, 'sms_reply')",
                               (person, person, ts, f"sms:{phone[:3]}****{phone[-4:]}"))
                action = f"unsubscribed:{len(persons)}"
            tx.execute("INSERT INTO sms_uplinks (phone, content, send_time, sequence_id, action, received) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (phone, content[:500], str(message.get("send_time") or ""), str(message.get("sequence_id") or ""),
                        action, ts))
            done.append({"phone": phone, "action": action})
    return done


def _key(db: Database) -> bytes:
    row = db.one("SELECT value FROM activation_keys WHERE name = 'unsubscribe'")
    if row is None:
        value = secrets.token_hex(32)
        with db.transaction() as tx:
            if tx.one("SELECT value FROM activation_keys WHERE name = 'unsubscribe'") is None:
                tx.execute("INSERT INTO activation_keys (name, value) VALUES ('unsubscribe', ?)", (value,))
        row = db.one("SELECT value FROM activation_keys WHERE name = 'unsubscribe'")
    assert row is not None
    return bytes.fromhex(str(row["value"]))


class TokenKey:
    """The unsubscribe link's key, read once per sender (the token names person and channel, signed)."""

    def __init__(self, db: Database) -> None:
        self._key = _key(db)

    def token(self, person: str, channel: str) -> str:
        mac = hmac.new(self._key, f"{person}|{channel}".encode(), hashlib.sha256).hexdigest()[:20]
        return f"{channel}.{person}.{mac}"

    def verify(self, token: str) -> tuple[str, str]:
        try:
            channel, person, mac = token.split(".", 2)
        except ValueError:
            raise Invalid("not an unsubscribe link", code="invalid_token") from None
        good = hmac.new(self._key, f"{person}|{channel}".encode(), hashlib.sha256).hexdigest()[:20]
        if channel not in CHANNELS or not hmac.compare_digest(mac, good):
            raise Invalid("not an unsubscribe link", code="invalid_token")
        return person, channel


def unsubscribe(db: Database, token: str) -> dict:
    """The link in a message: withdraws that channel's consent of that person."""
    person, channel = TokenKey(db).verify(token)
    ts = iso(utcnow())
    with db.transaction() as tx:
        _write(tx, person, channel, False, "link", ts)
        tx.execute("INSERT INTO consent_log (person_id, record_id, kind, granted, ts, store, actor, how) "
                   "VALUES (?, ?, ?, 0, ?, NULL, 'self', 'link')", (person, person, f"marketing:{channel}", ts))
    return {"person_id": person, "channel": channel, "granted": False}


@dataclass(frozen=True)
class Contact:
    person: str
    address: str | None
    tz: str | None
    fields: dict


@dataclass(frozen=True)
class Rules:
    quiet_start: int = 21  # local hour from which nothing is sent
    quiet_end: int = 9  # local hour until which nothing is sent
    weekly_cap: int = 2  # marketing messages per person in any 7 days, all campaigns and channels


def in_quiet_hours(now: datetime, tz: str | None, rules: Rules) -> bool:
    hour = now.astimezone(zone(tz)).hour
    if rules.quiet_start == rules.quiet_end:
        return False
    if rules.quiet_start > rules.quiet_end:  # over midnight
        return hour >= rules.quiet_start or hour < rules.quiet_end
    return rules.quiet_start <= hour < rules.quiet_end


def contacts(tx: Tx, persons: Sequence[str], channel: str) -> dict[str, Contact]:
    """Address, home store's time zone and the template fields (name, tier, points, ...) per person."""
    out: dict[str, Contact] = {}
    for start in range(0, len(persons), _CHUNK):
        chunk = list(persons[start:start + _CHUNK])
        marks = ", ".join("?" for _ in chunk)
        rows = tx.query(
            f"SELECT p.id, p.name, p.gender, p.tier, p.points, p.home_store, st.timezone, s.value_tier, s.lifecycle "
            f"FROM members p LEFT JOIN stores st ON st.id = p.home_store "
            f"LEFT JOIN person_stats s ON s.member_id = p.id WHERE p.id IN ({marks})", chunk)
        addresses: dict[str, str] = {}
        if channel == "coupon":  # the member's own wallet
            addresses = {p: p for p in chunk}
        elif channel == "guide_task":  # the home store's guide screens
            addresses = {r["id"]: r["home_store"] for r in rows if r["home_store"]}
        elif channel == "wecom":
            addresses = dict(tx.rows(f"SELECT person_id, wecom_user FROM person_guides WHERE person_id IN ({marks})",
                                     chunk))
        else:
            for person, value in tx.rows(
                    f"SELECT COALESCE(m.merged_into, m.id), i.value FROM identifiers i JOIN members m ON m.id = i.member_id "
                    f"WHERE i.kind = ? AND i.blocked IS NULL AND COALESCE(m.merged_into, m.id) IN ({marks}) "
                    f"ORDER BY i.id", (ADDRESS_KIND[channel], *chunk)):
                addresses.setdefault(person, value)
        for r in rows:
            name = r["name"] or ""
            fields = {"name": name, "surname": name[:1], "tier": r["tier"] or "", "points": str(r["points"] or 0),
                      "value_tier": r["value_tier"] or "", "lifecycle": r["lifecycle"] or "",
                      "title": {"F": "女士", "M": "先生"}.get(r["gender"] or "", "")}
            out[r["id"]] = Contact(r["id"], addresses.get(r["id"]), r["timezone"], fields)
    return out


class Policy:
    """The checks every send makes, in bulk for a batch of persons on one channel."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def check(self, tx: Tx, channel: str, contacts_: dict[str, Contact], now: datetime) -> dict[str, str | None]:
        persons = list(contacts_)
        suppressed_persons: set[str] = set()
        recent: dict[str, int] = {}
        week_ago = iso(now - timedelta(days=7))
        consent = {person for (person, _), r in latest(tx, persons, (channel,)).items() if r["granted"]}
        for start in range(0, len(persons), _CHUNK):
            chunk = persons[start:start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            suppressed_persons |= {r[0] for r in tx.rows(
                f"SELECT value FROM marketing_suppression WHERE kind = 'person' AND value IN ({marks})", chunk)}
            recent.update(dict(tx.rows(
                f"SELECT person_id, COUNT(*) FROM marketing_sends WHERE person_id IN ({marks}) AND sent_at >= ? "
                f"AND status IN ('sending', 'sent', 'delivered') AND channel NOT IN ({', '.join('?' for _ in IN_STORE)}) "
                f"GROUP BY person_id", (*chunk, week_ago, *IN_STORE))))
        addresses = [c.address for c in contacts_.values() if c.address]
        suppressed_values: set[str] = set()
        for start in range(0, len(addresses), _CHUNK):
            chunk = addresses[start:start + _CHUNK]
            suppressed_values |= {r[0] for r in tx.rows(
                f"SELECT value FROM marketing_suppression WHERE kind <> 'person' AND value IN "
                f"({', '.join('?' for _ in chunk)})", chunk)}
        verdict: dict[str, str | None] = {}
        messaged = channel not in IN_STORE
        for person, contact in contacts_.items():
            if messaged and person not in consent:
                verdict[person] = "no_consent"
            elif person in suppressed_persons or (contact.address in suppressed_values):
                verdict[person] = "suppressed"
            elif not contact.address:
                verdict[person] = "no_address"
            elif messaged and in_quiet_hours(now, contact.tz, self.rules):
                verdict[person] = "quiet_hours"
            elif messaged and recent.get(person, 0) >= self.rules.weekly_cap:
                verdict[person] = "frequency_cap"
            else:
                verdict[person] = None
        return verdict


def set_guide(db: Database, member_id: str, *, assistant: str, wecom_user: str) -> dict:
    """The member's own guide (专属导购): WeCom campaign messages go to this guide's WeCom user."""
    ts = iso(utcnow())
    with db.transaction() as tx:
        person = _person(tx, member_id)
        tx.execute("DELETE FROM person_guides WHERE person_id = ?", (person,))
        tx.execute("INSERT INTO person_guides (person_id, assistant, wecom_user, ts) VALUES (?, ?, ?, ?)",
                   (person, assistant, wecom_user, ts))
    return {"person_id": person, "assistant": assistant, "wecom_user": wecom_user, "ts": ts}
