"""Rostered assistants who did not come in: a shift under way and they are not signed in, or (at a
store whose screens are not used to sign in) nothing from them on the guide screen.

**Sign-ins** (issue 17): at a store whose guide screens were used to sign in within the last
``SIGN_IN_DAYS`` (``cloud.arrivals.staff``, 上岗/离岗), a rostered assistant is absent, as a fact and
within one scan, when ``GRACE`` into their shift they have not signed in that local day, or when they
signed out mid-shift more than ``GRACE`` ago and not back in: absent since their shift's start, or
since the sign-out. One assistant on shift is enough (nobody else's work is needed to tell).

**Without sign-ins**, the statistical test below. The roster (``shifts``, master data:
``cloud.masterdata``) says who should be on the floor now. An assistant shows they are there by
working the guide screen: every arrival's card they claim, greet, serve or sell on is a ``feedback``
row in their name (the only trace where nobody signs in). One with no row since ``EARLY`` before
their shift's start, ``GRACE`` after it, is
absent when the floor was busy enough that a present one would have acted: the arrivals the other
assistants on shift handled since that start are so many that, had the work been shared evenly
among the ``k`` rostered now, none of them falling to this one would happen less than ``ALPHA`` of
the time (``((k - 1) / k) ** n``). A quiet morning with two cards handled says nothing; twenty-five
handled while one of three never touched the screen is not chance. With one assistant on shift
nobody else handles anything: a screen nobody works is the claims source's shortfall
(``cloud.health.shortfall``), not this rule's.

``cloud.health.shortfall.judge`` runs this for every open store and raises one ``staff_absent``
alert while any rostered assistant is absent (``critical`` when half or more of those on shift
are; the alert's ``detail`` names them); it clears itself at the first scan after they appear
(sign in, or act on the screen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud import clock
from cloud.arrivals import staff
from cloud.db import Database

#: an assistant may sign in to the floor's work a little before the shift, and take this long after its start
EARLY = timedelta(minutes=30)
GRACE = timedelta(minutes=15)
#: the chance of an even share of the handled arrivals missing a present assistant, below which they are absent
#: (tested at every scan, but the chance only falls while they stay away: one test per shift in effect)
ALPHA = 1e-4
#: a store whose screens had a sign-in within these days is judged by sign-ins (one that stopped using them falls
#: back to the card actions after this long, instead of calling everyone absent for good)
SIGN_IN_DAYS = 7


@dataclass(frozen=True)
class Absence:
    since: datetime  # UTC: the earliest shift start of the absent
    absent: list[str]
    rostered: int  # assistants on shift now
    named: str  # the absent as the alert names them: 王静（s01-a1）、李丽（s01-a3）; the id alone when the staff file does not list them

    @property
    def severity(self) -> str:
        return "critical" if 2 * len(self.absent) >= self.rostered else "warning"


def absent_now(db: Database, store: str, tz: str | None, now: datetime) -> Absence | None:
    """The store's rostered assistants absent at ``now`` (None when none, or the store has no roster today)."""
    zone = clock.zone(tz)
    local = now.astimezone(zone)
    at = local.strftime("%H:%M")
    rostered = [(a, datetime.fromisoformat(f"{local.date().isoformat()}T{start}").replace(tzinfo=zone))
                for a, start, end in db.rows("SELECT assistant, start_time, end_time FROM shifts WHERE store = ? "
                                             "AND day = ?", (store, local.date().isoformat())) if start <= at < end]
    due = [(a, start) for a, start in rostered if start + GRACE <= now]
    if not due:
        return None
    if staff.uses_sign_in(db, store, now, SIGN_IN_DAYS):
        names = staff.names(db, store)
        return _not_signed_in(staff.day_signs(db, store, tz, now), due, len(rostered), now, names)
    if len(rostered) < 2:
        return None
    first = min(start for _, start in due) - EARLY
    acted = db.rows("SELECT assistant, visit_id, MIN(ts) FROM feedback WHERE store = ? AND ts >= ? AND ts <= ? "
                    "GROUP BY assistant, visit_id", (store, clock.iso_utc(first), clock.iso_utc(now)))
    share = (len(rostered) - 1) / len(rostered)
    absent = []
    for assistant, start in due:
        early, began = clock.iso_utc(start - EARLY), clock.iso_utc(start)
        if any(a == assistant and ts >= early for a, _, ts in acted):
            continue
        handled = sum(a != assistant and ts >= began for a, _, ts in acted)
        if share ** handled < ALPHA:
            absent.append((assistant, start))
    return _absence(absent, len(rostered), staff.names(db, store) if absent else {})


def _not_signed_in(signs: dict[str, list[staff.Sign]], due: list[tuple[str, datetime]], rostered: int,
                   now: datetime, names: dict[str, str]) -> Absence | None:
    """The assistants due on the floor who are not signed in: no sign since the day began (absent from their
    shift's start), or signed out more than ``GRACE`` ago (absent from the sign-out). ``signs`` are by id: a
    screen configured with the staff file's names signs under them, and those count for their ids."""
    absent = []
    for assistant, start in due:
        mine = signs.get(assistant, [])
        if not mine:
            absent.append((assistant, start))
        elif mine[-1].action == "sign_out" and mine[-1].ts + GRACE <= now:
            absent.append((assistant, max(start, mine[-1].ts)))
    return _absence(absent, rostered, names)


def _absence(absent: list[tuple[str, datetime]], rostered: int, names: dict[str, str]) -> Absence | None:
    if not absent:
        return None
    ids = sorted(a for a, _ in absent)
    return Absence(min(since for _, since in absent).astimezone(UTC), ids, rostered,
                   "、".join(f"{names[a]}（{a}）" if names.get(a) else a for a in ids))
