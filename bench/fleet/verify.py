"""The invariants after a soak: nothing lost, nothing twice, no wrong member, every screen back.

The ground truth is each box's arrival log (what was committed to its outbox, with the person it
showed); the cloud's truth is its database (``arrivals`` and ``visits``); the screens' truth is
what each ``GuideScreen`` recorded.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from bench.fleet.screen import Seen


def produced_arrivals(workdir: Path, stores: list[str]) -> dict[str, dict]:
    """event id -> {person, store, ts, ...}: every arrival some box committed to its outbox."""
    out: dict[str, dict] = {}
    for store in stores:
        path = workdir / f"{store}.arrivals.jsonl"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill; its arrival is still in the outbox
            out[row["event_id"]] = {**row, "store": store}
    return out


def cloud_rows(db_url: str) -> tuple[dict[str, str], list[tuple[str, str | None, str]], int,
                                     dict[str, str | None], dict[str, str | None]]:
    """(arrival event id -> store, [(arrival event id, member id, card id)] of visits, footfall minutes,
    arrival event id -> the visit it belongs to (the one it opened, or another box's or an earlier
    arrival's within the re-visit window: issue 15's visit truth), visit id -> member id)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT event_id, store, visit_id FROM arrivals").fetchall()
        visits = conn.execute("SELECT arrival_event_id, member_id, card_id FROM visits").fetchall()
        footfall = conn.execute("SELECT count(*) FROM footfall").fetchone()[0]
        members_of = dict(conn.execute("SELECT id, member_id FROM visits").fetchall())
    arrivals = {event: store for event, store, _ in rows}
    visit_of = {event: visit for event, _, visit in rows}
    return arrivals, visits, footfall, {e: (v if v in members_of else None) for e, v in visit_of.items()}, members_of


def wait_for_cloud(db_url: str, produced: dict[str, dict], timeout: float) -> float:
    """Wait until every produced arrival is in the cloud (or the timeout); return the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        arrivals = cloud_rows(db_url)[0]
        if produced.keys() <= arrivals.keys():
            break
        time.sleep(2)
    return time.monotonic() - started


@dataclass
class Verdict:
    produced: int
    in_cloud: int
    lost: int  # produced, never in the cloud
    unlogged: int  # in the cloud, not in any log (a box killed between its outbox commit and its log line)
    duplicate_visits: int  # arrivals with more than one visit
    arrivals_without_visit: int  # in no visit at all (neither one it opened nor one it joined)
    same_visit_arrivals: int  # stored against a visit another arrival opened (issue 15: no second visit, no card)
    wrong_member_visits: int  # a visit naming a member who is not the person at the door
    member_visits: int
    visitor_visits: int
    cards_received: int
    cards_shown: int
    wrong_member_cards: int
    duplicate_cards_shown: int  # one arrival shown twice on a screen
    screens_recovered: int
    screens: int
    not_recovered: list[str]
    footfall_minutes: int
    lost_examples: list[str]

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicate_visits == 0 and self.arrivals_without_visit == 0
                and self.wrong_member_visits == 0 and self.wrong_member_cards == 0 and self.duplicate_cards_shown == 0
                and self.screens_recovered == self.screens)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def verify(produced: dict[str, dict], db_url: str, members: dict[str, str], screens: dict[str, list[Seen]],
           disruptions: dict[str, float], allowed_unlogged: int = 0) -> Verdict:
    arrivals, visits, footfall, visit_of, member_of_visit = cloud_rows(db_url)
    lost = sorted(produced.keys() - arrivals.keys())
    per_arrival = Counter(event for event, _, _ in visits)
    truth = {event: row["person"] for event, row in produced.items()}
    # every arrival, opener or joined, must belong to a visit of the person it showed
    wrong_visits = [event for event, visit in visit_of.items()
                    if visit is not None and (member := member_of_visit.get(visit)) is not None
                    and event in truth and members.get(member) != truth[event]]
    in_a_visit = {event for event, visit in visit_of.items() if visit is not None} | per_arrival.keys()
    cards = [seen for seen_list in screens.values() for seen in seen_list]
    wrong_cards = [s for s in cards if s.member_id is not None and members.get(s.member_id) != truth.get(s.arrival_event_id)]
    shown = Counter(s.arrival_event_id for s in cards if s.outcome == "shown")
    recovered = [store for store, seen in screens.items() if any(s.received > disruptions.get(store, 0.0) for s in seen)]
    return Verdict(
        produced=len(produced), in_cloud=len(arrivals), lost=len(lost),
        unlogged=len(arrivals.keys() - produced.keys()),
        duplicate_visits=sum(1 for n in per_arrival.values() if n > 1),
        arrivals_without_visit=len(arrivals.keys() - in_a_visit),
        same_visit_arrivals=len(in_a_visit - per_arrival.keys()),
        wrong_member_visits=len(wrong_visits),
        member_visits=sum(1 for _, member, _ in visits if member is not None),
        visitor_visits=sum(1 for _, member, _ in visits if member is None),
        cards_received=len(cards), cards_shown=sum(shown.values()),
        wrong_member_cards=len(wrong_cards), duplicate_cards_shown=sum(1 for n in shown.values() if n > 1),
        screens_recovered=len(recovered), screens=len(screens),
        not_recovered=sorted(screens.keys() - set(recovered)), footfall_minutes=footfall, lost_examples=lost[:5],
    )
