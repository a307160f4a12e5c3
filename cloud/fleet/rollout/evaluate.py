"""Is the new pack worse in the canary stores? Three measures, two references, fixed tolerances.

Measures over a time window for a set of stores (``measure``):

* **unknown rate**: face visits with no member / all face visits. A pack that embeds worse
  recognises fewer members, so more arrivals become visitors.
* **"not this person" rate**: guide-screen "not this person" presses / member visits (cards). A
  pack that embeds worse also matches the wrong member more often.
* **fps**: the boxes' mean frames per second per running camera (telemetry). A heavier pack is slower.

References (``decide``): the canary stores' own *before* window (same stores, the pack they ran)
and the *other* stores over the same *after* window (same time of day and season, old pack).
A measure counts as worse only if it is worse than **every** reference that has enough data:
a busy Saturday raises the unknown rate in every store, not only in the canary ones, and a
canary store with no history is still judged against the others. Any worse measure rolls back;
the pack is promoted once the unknown rate and fps could be judged and none is worse; otherwise
the verdict is to wait for more data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.clock import iso
from cloud.db import Database

Verdict = Literal["promote", "rollback", "wait"]


class Tolerances(BaseModel):
    """How much worse than a reference a canary measure may be before it counts as worse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unknown_rate_points: float = Field(default=0.10, ge=0, le=1, description="absolute rise of the visitor share")
    not_this_person_points: float = Field(default=0.05, ge=0, le=1, description="absolute rise per member card")
    fps_drop: float = Field(default=0.20, ge=0, le=1, description="relative fall of fps")
    min_visits: int = Field(default=30, ge=1, description="face visits a window needs for the unknown rate")
    min_member_cards: int = Field(default=10, ge=1, description="member cards a window needs for 'not this person'")
    min_reports: int = Field(default=4, ge=1, description="telemetry reports a window needs for fps")


@dataclass(frozen=True)
class Window:
    visits: int
    visitors: int
    member_cards: int
    not_this_person: int
    reports: int
    fps: float | None

    @property
    def unknown_rate(self) -> float | None:
        return self.visitors / self.visits if self.visits else None

    @property
    def not_this_person_rate(self) -> float | None:
        return self.not_this_person / self.member_cards if self.member_cards else None


@dataclass(frozen=True)
class Check:
    metric: str
    canary: float | None
    before: float | None
    others: float | None
    worse: bool | None  # None: not enough data to judge
    note: str


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    checks: tuple[Check, ...]
    windows: dict[str, dict]

    def as_dict(self) -> dict:
        return asdict(self)


def _stores(column: str, stores: list[str], exclude: bool) -> tuple[str, list[str]]:
    if not stores:
        return ("", []) if exclude else (" AND 1 = 0", [])
    return f" AND {column} {'NOT ' if exclude else ''}IN ({', '.join('?' for _ in stores)})", list(stores)


def measure(db: Database, brand: str, stores: list[str], since: datetime, until: datetime, *,
            exclude: bool = False) -> Window:
    """The window's counts for ``stores`` of the brand (with ``exclude``: every other store)."""
    where, args = _stores("store", stores, exclude)
    span = (brand, iso(since), iso(until), *args)
    visits = db.one(
        "SELECT COUNT(*) AS visits, COALESCE(SUM(CASE WHEN member_id IS NULL THEN 1 ELSE 0 END), 0) AS visitors "
        f"FROM visits WHERE brand = ? AND ts >= ? AND ts < ? AND signals LIKE '%face%'{where}", span) or {}
    wrong = db.scalar("SELECT COUNT(*) FROM feedback WHERE brand = ? AND ts >= ? AND ts < ? "
                      f"AND action = 'not_this_person'{where}", span)
    fps = db.one(f"SELECT COUNT(*) AS reports, AVG(fps) AS fps FROM device_telemetry WHERE brand = ? AND ts >= ? "
                 f"AND ts < ?{where}", span) or {}
    total, visitors = int(visits.get("visits") or 0), int(visits.get("visitors") or 0)
    return Window(visits=total, visitors=visitors, member_cards=total - visitors, not_this_person=int(wrong or 0),
                  reports=int(fps.get("reports") or 0), fps=float(fps["fps"]) if fps.get("fps") is not None else None)


def _check(metric: str, canary: float | None, refs: dict[str, float | None], worse_than, note: str) -> Check:
    usable = {name: value for name, value in refs.items() if value is not None}
    if canary is None or not usable:
        return Check(metric, canary, refs["before"], refs["others"], None, f"not enough data ({note})")
    worse = all(worse_than(canary, value) for value in usable.values())
    against = ", ".join(f"{name} {value:.3f}" for name, value in usable.items())
    return Check(metric, canary, refs["before"], refs["others"], worse,
                 f"canary {canary:.3f} vs {against}: {'worse' if worse else 'within tolerance'} ({note})")


def decide(after: Window, before: Window, others: Window, tol: Tolerances) -> Decision:
    """The verdict on hand-made or measured windows (pure: no database)."""
    def rate(w: Window, value: float | None, attr: str, floor: int) -> float | None:
        """The measure, if its window has at least ``floor`` of what it is computed from."""
        return value if getattr(w, attr) >= floor else None

    checks = (
        _check("unknown_rate", rate(after, after.unknown_rate, "visits", tol.min_visits),
               {"before": rate(before, before.unknown_rate, "visits", tol.min_visits),
                "others": rate(others, others.unknown_rate, "visits", tol.min_visits)},
               lambda c, r: c > r + tol.unknown_rate_points, f"+{tol.unknown_rate_points:.2f} allowed"),
        _check("not_this_person_rate",
               rate(after, after.not_this_person_rate, "member_cards", tol.min_member_cards),
               {"before": rate(before, before.not_this_person_rate, "member_cards", tol.min_member_cards),
                "others": rate(others, others.not_this_person_rate, "member_cards", tol.min_member_cards)},
               lambda c, r: c > r + tol.not_this_person_points, f"+{tol.not_this_person_points:.2f} allowed"),
        _check("fps", rate(after, after.fps, "reports", tol.min_reports),
               {"before": rate(before, before.fps, "reports", tol.min_reports),
                "others": rate(others, others.fps, "reports", tol.min_reports)},
               lambda c, r: c < r * (1 - tol.fps_drop), f"-{tol.fps_drop:.0%} allowed"),
    )
    windows = {"after": asdict(after), "before": asdict(before), "others": asdict(others)}
    worse = [c for c in checks if c.worse]
    if worse:
        return Decision("rollback", "; ".join(f"{c.metric} worse: {c.note}" for c in worse), checks, windows)
    required = [c for c in checks if c.metric in ("unknown_rate", "fps")]
    if all(c.worse is False for c in required):
        return Decision("promote", "; ".join(c.note for c in checks), checks, windows)
    return Decision("wait", "; ".join(f"{c.metric}: {c.note}" for c in checks if c.worse is None), checks, windows)
