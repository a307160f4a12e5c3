"""The campaign sender: works through due ``marketing_sends`` rows in batches, over the channel adapters
(``cloud.channels``: the same ``Channel.send(address, Notice)`` interface the health alerts use).

Per batch: the checks (``consent.Policy``) decide what may go; a refused row is ``skipped`` with its
reason, a row in quiet hours waits (``due`` moves to the end of the quiet hours in the person's
store's time zone; quiet hours are checked again just before each request, as a batch takes
seconds and the evening may begin in between); the rest are claimed (``sending``, this sender's
``owner``) in one transaction *before* any request, each only if still ``pending`` (two senders that
read the same rows send each once), sent concurrently (a rate limit per channel), and recorded
``sent`` with the provider's receipt, or retried with back-off (``pending``, ``due`` later, up to
``MAX_ATTEMPTS``).

No duplicates after a restart or a lost answer: a row left ``sending`` by a sender that died, or by
one whose request got no answer (``ChannelUnanswered``: a reset or a timeout after the request was
written, when the provider may have taken it), is asked about first (``reconcile``, once the row is
``stale_s`` old); the SMS adapter answers from QuerySendDetails by its OutId (= the send's key). Found: it
is ``sent``; not found: it goes back to ``pending`` and is sent once. An adapter that cannot be asked
marks it ``unknown`` (at most once, never twice).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloud.activation.consent import IN_STORE, Contact, Policy, Rules, TokenKey, contacts, in_quiet_hours
from cloud.channels.notice import Channel, ChannelFailed, ChannelUnanswered, Notice, ask_provider
from cloud.clock import iso, utcnow, zone
from cloud.db import Database
from cloud.errors import CloudError

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


@dataclass
class Tally:
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    unanswered: int = 0  # left for reconcile to ask the provider about


class RateLimit:
    """A token bucket: at most ``per_s`` sends a second on a channel (None: unlimited)."""

    def __init__(self, per_s: float | None) -> None:
        self.per_s = per_s
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.per_s:
            return
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + 1 / self.per_s
            delay = self._next - 1 / self.per_s - now
        if delay > 0:
            time.sleep(delay)


def _quiet_end(now: datetime, tz: str | None, rules: Rules) -> datetime:
    local = now.astimezone(zone(tz))
    end = local.replace(hour=rules.quiet_end, minute=0, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


def render(body: str, fields: dict[str, str]) -> str:
    out = body
    for k, v in fields.items():
        out = out.replace("{" + k + "}", v)
    return out


class CampaignSender:
    def __init__(self, db: Database, channels: dict[str, Channel], *, workers: int = 16,
                 rate_per_s: dict[str, float] | None = None, link_base: str = "") -> None:
        self.db, self.channels = db, channels
        self.owner = uuid.uuid4().hex[:12]
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="campaign-send")
        self._limits = {name: RateLimit((rate_per_s or {}).get(name)) for name in channels}
        self._tokens = TokenKey(db)
        self._link_base = link_base.rstrip("/")
        self._templates: dict[str, dict] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def reconcile(self, *, stale_s: float = 120.0, now: datetime | None = None) -> dict[str, int]:
        """Rows another (dead) sender claimed and never recorded: ask the provider, then settle them."""
        now = now or utcnow()
        rows = self.db.query("SELECT id, key, channel, address, sent_at FROM marketing_sends WHERE status = 'sending' "
                             "AND (owner IS NULL OR owner <> ?) AND updated < ?",
                             (self.owner, iso(now - timedelta(seconds=stale_s))))
        out = {"found": 0, "resend": 0, "unknown": 0}
        for r in rows:
            asked = ask_provider(self.channels.get(r["channel"]), r["address"], r["key"], r["sent_at"])
            if asked.verdict == "unknown":
                self.db.execute("UPDATE marketing_sends SET status = 'unknown', reason = 'crashed_mid_send', "
                                "updated = ? WHERE id = ?", (iso(now), r["id"]))
            elif asked.verdict == "found":
                self.db.execute("UPDATE marketing_sends SET status = 'sent', receipt = ?, updated = ? WHERE id = ?",
                                (asked.receipt, iso(now), r["id"]))
            else:
                self.db.execute("UPDATE marketing_sends SET status = 'pending', owner = NULL, sent_at = NULL, "
                                "updated = ? WHERE id = ?", (iso(now), r["id"]))
            out[asked.verdict] += 1
        return out

    def _template(self, template_id: str) -> dict:
        if template_id not in self._templates:
            from cloud.activation.campaigns import template
            self._templates[template_id] = template(self.db, template_id)
        return self._templates[template_id]

    def _notice(self, key: str, campaign: dict, contact: Contact) -> Notice:
        t = self._template(campaign["template_id"])
        link = f"{self._link_base}/u/{self._tokens.token(contact.person, campaign['channel'])}"
        fields = {**contact.fields, "link": link}
        text = render(t["body"], fields)
        params = {p: fields.get(p, "") for p in t["params"]}
        return Notice(key=key, title=campaign["name"], text=text, markdown=text, link=link, severity="info",
                      payload={"sms_template": t["code"], "sms_params": params, "wechat_template": t["code"],
                               "coupon_template": t["code"], "person": contact.person,
                               "wechat_data": {p: {"value": v[:20]} for p, v in params.items()}})

    def run_once(self, *, now: datetime | None = None, batch: int = 1000, stop: threading.Event | None = None) -> Tally:
        """One batch of due sends of running campaigns. ``stop`` lets a test kill it mid-batch."""
        now = now or utcnow()
        tally = Tally()
        due = self.db.query(
            "SELECT s.id, s.key, s.person_id, s.attempts, c.id AS campaign_id, c.name, c.channel, c.template_id, "
            "c.quiet_start, c.quiet_end, c.weekly_cap FROM marketing_sends s JOIN campaigns c ON c.id = s.campaign_id "
            "WHERE s.status = 'pending' AND s.due <= ? AND c.status = 'running' ORDER BY s.due, s.id LIMIT ?",
            (iso(now), batch))
        if not due:
            return tally
        ts = iso(now)
        by_campaign: dict[str, list[dict]] = {}
        for r in due:
            by_campaign.setdefault(r["campaign_id"], []).append(r)
        claimed: list[tuple[dict, dict, Contact]] = []
        with self.db.transaction() as tx:
            for rows in by_campaign.values():
                campaign = rows[0]
                rules = Rules(int(campaign["quiet_start"]), int(campaign["quiet_end"]), int(campaign["weekly_cap"]))
                people = contacts(tx, [r["person_id"] for r in rows], campaign["channel"])
                verdict = Policy(rules).check(tx, campaign["channel"], people, now)
                skipped, deferred, claim = [], [], []
                for r in rows:
                    contact = people.get(r["person_id"]) or Contact(r["person_id"], None, None, {})
                    reason = verdict.get(r["person_id"], "no_profile")
                    if reason == "quiet_hours":
                        deferred.append((iso(_quiet_end(now, contact.tz, rules)), "deferred:quiet_hours", ts, r["id"]))
                    elif reason is not None:
                        skipped.append((reason, contact.address, ts, r["id"]))
                        tally.skipped[reason] = tally.skipped.get(reason, 0) + 1
                    elif campaign["channel"] not in self.channels:
                        skipped.append(("channel_not_configured", contact.address, ts, r["id"]))
                        tally.skipped["channel_not_configured"] = tally.skipped.get("channel_not_configured", 0) + 1
                    else:
                        claim.append((r, contact))
                # each row only while still pending: another sender that read the same rows sends none twice
                tx.executemany("UPDATE marketing_sends SET status = 'skipped', reason = ?, address = ?, updated = ? "
                               "WHERE id = ? AND status = 'pending'", skipped)
                tx.executemany("UPDATE marketing_sends SET due = ?, reason = ?, updated = ? "
                               "WHERE id = ? AND status = 'pending'", deferred)
                for r, contact in claim:
                    if tx.execute("UPDATE marketing_sends SET status = 'sending', address = ?, owner = ?, sent_at = ?, "
                                  "updated = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
                                  (contact.address, self.owner, ts, ts, r["id"])):
                        claimed.append((r, campaign, contact))
                tally.deferred += len(deferred)
        if stop is not None and stop.is_set():
            return tally

        started = time.monotonic()
        quiet_until: dict[int, str] = {}

        def one(item: tuple[dict, dict, Contact]) -> tuple[int, str | None, str | None, str]:
            """The send's id, its receipt, the error, and what to do after an error: ``retry`` (after
            the back-off), ``fail`` (permanently refused) or ``ask`` (no answer: the provider may have
            taken it, so ``reconcile`` asks it before any resend)."""
            r, campaign, contact = item
            if stop is not None and stop.is_set():
                return r["id"], None, "stopped", "retry"
            self._limits[campaign["channel"]].wait()
            # a batch takes seconds: quiet hours may have begun since it was claimed
            at = now + timedelta(seconds=time.monotonic() - started)
            rules = Rules(int(campaign["quiet_start"]), int(campaign["quiet_end"]), int(campaign["weekly_cap"]))
            if campaign["channel"] not in IN_STORE and in_quiet_hours(at, contact.tz, rules):
                quiet_until[r["id"]] = iso(_quiet_end(at, contact.tz, rules))
                return r["id"], None, None, "retry"
            channel = self.channels[campaign["channel"]]
            try:
                receipt = channel.send(contact.address or "", self._notice(r["key"], campaign, contact))
                return r["id"], receipt, None, "retry"
            except ChannelUnanswered as exc:
                return r["id"], None, str(exc)[:200], "ask" if hasattr(channel, "sent_with") else "retry"
            except ChannelFailed as exc:
                return r["id"], None, str(exc)[:200], "fail" if getattr(exc, "code", "") == "wechat_refused" else "retry"
            except CloudError as exc:
                return r["id"], None, str(exc)[:200], "fail"

        results = list(self._pool.map(one, claimed))
        if stop is not None and stop.is_set():
            return tally  # killed: rows stay 'sending' as a dead process would leave them
        attempts = {r["id"]: int(r["attempts"]) + 1 for r, _, _ in claimed}
        sent: list[tuple] = []
        retry: list[tuple] = []
        failed: list[tuple] = []
        late: list[tuple] = []
        unanswered: list[tuple] = []
        for send_id, receipt, error, after in results:
            if send_id in quiet_until:
                late.append((quiet_until[send_id], ts, send_id))
            elif receipt is not None:
                sent.append((receipt, ts, send_id))
            elif after == "ask":
                unanswered.append((error, ts, send_id))
            elif after == "fail" or attempts[send_id] >= MAX_ATTEMPTS:
                failed.append((error, ts, send_id))
            else:
                later = iso(now + timedelta(seconds=10 * 2 ** attempts[send_id]))
                retry.append((error, later, ts, send_id))
        with self.db.transaction() as tx:
            tx.executemany("UPDATE marketing_sends SET status = 'sent', receipt = ?, updated = ? WHERE id = ?", sent)
            tx.executemany("UPDATE marketing_sends SET status = 'pending', reason = ?, due = ?, sent_at = NULL, "
                           "owner = NULL, updated = ? WHERE id = ?", retry)
            tx.executemany("UPDATE marketing_sends SET status = 'failed', reason = ?, updated = ? WHERE id = ?", failed)
            # left 'sending' with no owner: reconcile asks the provider once it is stale, as after a crash
            tx.executemany("UPDATE marketing_sends SET reason = ?, owner = NULL, updated = ? WHERE id = ?", unanswered)
            tx.executemany("UPDATE marketing_sends SET status = 'pending', reason = 'deferred:quiet_hours', due = ?, "
                           "sent_at = NULL, owner = NULL, attempts = attempts - 1, updated = ? WHERE id = ?", late)
        tally.sent, tally.retried, tally.failed, tally.unanswered = len(sent), len(retry), len(failed), len(unanswered)
        tally.deferred += len(late)
        return tally

    def run(self, *, now: datetime | None = None, batch: int = 1000) -> Tally:
        """Every due send, batch after batch (the scheduler's job calls this)."""
        total = Tally()
        while True:
            t = self.run_once(now=now, batch=batch)
            total.sent += t.sent
            total.deferred += t.deferred
            total.retried += t.retried
            total.failed += t.failed
            total.unanswered += t.unanswered
            for k, v in t.skipped.items():
                total.skipped[k] = total.skipped.get(k, 0) + v
            if t.sent + t.deferred + t.retried + t.failed + t.unanswered + sum(t.skipped.values()) == 0:
                return total


def sms_report(db: Database, reports: list[dict], *, now: datetime | None = None) -> int:
    """Aliyun's SmsReport push (``biz_id``, ``success``, ``err_code``, ...): delivered or not."""
    ts = iso(now or utcnow())
    rows = [("delivered" if r.get("success") in (True, "true", 1) else "undelivered",
             None if r.get("success") in (True, "true", 1) else str(r.get("err_code") or "")[:60], ts,
             str(r.get("biz_id") or "")) for r in reports]
    with db.transaction() as tx:
        tx.executemany("UPDATE marketing_sends SET status = ?, reason = COALESCE(?, reason), delivered = ? "
                       "WHERE receipt = ? AND status = 'sent'", rows)
    return len(rows)
