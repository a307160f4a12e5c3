"""Points-expiry notices actually sent (issue 21): ``loyalty_notices`` rows (one per lot, recorded by
the loyalty expiry job) go out over the same channel adapters as campaigns, one message per person.

A notice is about the member's own points, but it is still a message nobody asked for: it goes only
on a channel the person consented to (opt-in, ``consent.Policy``), never to a suppressed person or
address, and never in quiet hours in the time zone of the person's home store (the rows wait for the
next run). The campaigns' weekly cap does not apply (a notice is not a campaign, and is not counted
towards it). Channels are tried in ``PREFERENCE`` order; a person without consent on any configured
channel is recorded ``no_consent`` and not asked again. Each row keeps when, how and with what
provider receipt it went (``sent_at``, ``channel``, ``outcome``, ``receipt``).

Several cloud processes may run the job at once: a person's rows are claimed (``outcome =
'sending'``, the channel, only while still unclaimed) before the message goes, so one process sends
it. A claim whose answer never came (``ChannelUnanswered``: the provider may have taken it) or that
a process left when it died mid-send is settled after ``STALE`` the way campaigns settle theirs
(``cloud.channels.notice.ask_provider``, by the notice's key, the provider's ``OutId``): found, it is
``sent``; not found, it is sent once; a channel that cannot be asked leaves it ``unknown``. At most
once, never twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from cloud.activation.consent import Policy, Rules, contacts
from cloud.channels.notice import Channel, ChannelFailed, ChannelUnanswered, Notice, ask_provider
from cloud.clock import iso, utcnow
from cloud.db import Database

log = logging.getLogger(__name__)

PREFERENCE = ("wechat", "sms", "wecom", "email")
#: The SMS template (TemplateCode) of the notice; its fields are ``points`` and ``date``.
SMS_TEMPLATE = "SMS_POINTS_EXPIRING"
#: A claim older than this was left by a process that died while sending: taken again.
STALE = timedelta(minutes=10)
#: Policy verdicts that end a channel's chance for a person, so the next channel is tried.
_NEXT_CHANNEL = frozenset({"no_consent", "no_address", "suppressed"})
#: What settling a stale claim writes, by the provider's answer (``ask_provider``); the receipt is the parameter.
_SETTLED = {"found": "outcome = 'sent', receipt = ?",
            "resend": "outcome = NULL, sent_at = NULL, channel = NULL, receipt = ?",
            "unknown": "outcome = 'unknown', receipt = ?"}


class ExpiryNoticeSender:
    def __init__(self, db: Database, channels: dict[str, Channel], *, rules: Rules | None = None) -> None:
        self.db = db
        self.channels = channels
        self.policy = Policy(rules or Rules(weekly_cap=1_000_000))

    def run(self, *, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
        """Settle stale claims, then send what is due; counts by outcome (sent, deferred for quiet hours,
        no_consent, failed, unanswered: left for the provider to be asked; found and unknown: stale
        claims the provider had, or could not be asked about)."""
        now = now or utcnow()
        counts = {"sent": 0, "deferred": 0, "no_consent": 0, "failed": 0, "claimed_elsewhere": 0, "unanswered": 0,
                  **self._settle(now)}
        rows = self.db.query("SELECT lot_id, person, points, expires FROM loyalty_notices "
                             "WHERE outcome IS NULL AND expires > ? ORDER BY noticed, lot_id LIMIT ?", (iso(now), batch))
        lots: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            lots[row["person"]].append(row)
        left = set(lots)
        for channel in (c for c in PREFERENCE if c in self.channels):
            if not left:
                break
            with self.db.transaction() as tx:
                found = contacts(tx, sorted(left), channel)
                verdicts = self.policy.check(tx, channel, found, now)
            for person, verdict in verdicts.items():
                if verdict in _NEXT_CHANNEL:
                    continue
                left.discard(person)
                if verdict is not None:  # quiet hours: every channel waits for the morning
                    counts["deferred"] += 1
                    continue
                address = found[person].address
                assert address is not None  # the policy said no_address otherwise
                counts[self._send(channel, address, person, lots[person], now)] += 1
        for person in left:
            self._record(lots[person], now, channel=None, outcome="no_consent", receipt=None)
            counts["no_consent"] += 1
        return counts

    def _settle(self, now: datetime) -> dict[str, int]:
        """Claims older than ``STALE`` (an unanswered send, a process that died mid-send): ask the
        provider by the notice's key; found, the rows are sent; not found, they are given back and go
        in this run; a channel that cannot be asked (or no address left to ask about) leaves them
        ``unknown``. Each update only while the claim is still as read, so two processes settle it once."""
        stale = self.db.query("SELECT lot_id, person, channel, sent_at FROM loyalty_notices "
                              "WHERE outcome = 'sending' AND sent_at < ?", (iso(now - STALE),))
        claims: dict[tuple[str, str | None, str], list[int]] = defaultdict(list)
        for r in stale:
            claims[(r["person"], r["channel"], r["sent_at"])].append(r["lot_id"])
        out = {"found": 0, "unknown": 0}
        for (person, name, sent_at), lot_ids in claims.items():
            channel = self.channels.get(name or "")
            with self.db.transaction() as tx:
                found = contacts(tx, [person], name) if channel is not None and name else {}
            address = found[person].address if person in found else None
            try:
                asked = ask_provider(channel if address else None, address or "", _key(person, lot_ids), sent_at)
            except ChannelFailed as exc:
                log.warning("could not ask %s about the points notice to %s: %s (asked next run)", name, person, exc)
                continue
            with self.db.transaction() as tx:
                tx.executemany(f"UPDATE loyalty_notices SET {_SETTLED[asked.verdict]} "
                               "WHERE lot_id = ? AND outcome = 'sending' AND sent_at = ?",
                               [(asked.receipt, lot, sent_at) for lot in lot_ids])
            if asked.verdict != "resend":  # given back ones are sent (and counted) in this run
                out[asked.verdict] += 1
        return out

    def _claim(self, channel: str, rows: list[dict], now: datetime) -> bool:
        """Take a person's rows for sending on ``channel``, all or none, only while each is unclaimed."""
        with self.db.transaction() as tx:
            taken = [r for r in rows if tx.execute(
                "UPDATE loyalty_notices SET outcome = 'sending', sent_at = ?, channel = ? WHERE lot_id = ? "
                "AND outcome IS NULL", (iso(now), channel, r["lot_id"]))]
            if len(taken) == len(rows):
                return True
            # another process took some of them: give back, in the same transaction, what this one took
            tx.executemany("UPDATE loyalty_notices SET outcome = NULL, sent_at = NULL, channel = NULL WHERE lot_id = ?",
                           [(r["lot_id"],) for r in taken])
            return False

    def _send(self, channel: str, address: str, person: str, rows: list[dict], now: datetime) -> str:
        if not self._claim(channel, rows, now):
            return "claimed_elsewhere"
        points, first = sum(r["points"] for r in rows), min(r["expires"] for r in rows)[:10]
        text = f"您有 {points} 积分将于 {first} 到期，欢迎到店或在线使用。"
        notice = Notice(key=_key(person, [r["lot_id"] for r in rows]), title="积分即将到期", text=text,
                        markdown=text, link="", severity="info",
                        payload={"sms_template": SMS_TEMPLATE, "sms_params": {"points": str(points), "date": first},
                                 "wechat_template": SMS_TEMPLATE,
                                 "wechat_data": {"points": {"value": str(points)}, "date": {"value": first}}})
        try:
            receipt = self.channels[channel].send(address, notice)
        except ChannelUnanswered as exc:
            # the provider may have taken it: the claim stays, and _settle asks the provider once it is stale
            log.warning("points notice to %s over %s unanswered: %s (the provider is asked later)", person, channel, exc)
            return "unanswered"
        except ChannelFailed as exc:
            log.warning("points notice to %s over %s failed: %s (retried next run)", person, channel, exc)
            with self.db.transaction() as tx:  # given back: the next run tries again
                tx.executemany("UPDATE loyalty_notices SET outcome = NULL, sent_at = NULL, channel = NULL "
                               "WHERE lot_id = ? AND outcome = 'sending'", [(r["lot_id"],) for r in rows])
            return "failed"
        self._record(rows, now, channel=channel, outcome="sent", receipt=receipt)
        return "sent"

    def _record(self, rows: list[dict], now: datetime, *, channel: str | None, outcome: str,
                receipt: str | None) -> None:
        with self.db.transaction() as tx:
            tx.executemany("UPDATE loyalty_notices SET sent_at = ?, channel = ?, outcome = ?, receipt = ? "
                           "WHERE lot_id = ? AND (outcome IS NULL OR outcome = 'sending')",
                           [(iso(now), channel, outcome, receipt, r["lot_id"]) for r in rows])


def _key(person: str, lot_ids: list[int]) -> str:
    """The notice's key (the SMS ``OutId``): the same claim always has the same one, so a lost answer
    can be asked about by it (a claim's rows are the person's rows sharing its ``sent_at``)."""
    return f"points-{person}-{min(lot_ids)}"
