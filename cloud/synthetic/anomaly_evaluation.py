"""Precision and recall of the anomaly scan on planted data, through the real tables and scan code.

The planted series go into ``store_metrics`` (and their stores into ``stores``); the scan then runs
the way the cloud runs it, repeatedly with a moving ``now``, over the last ``eval_days`` days
(the weeks before are the history it learns from). An alert on a planted (store, metric, hour)
is a true positive, any other alert a false positive, a planted hour without one a miss.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from cloud import clock
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.health.alerts import Publish
from cloud.health.anomaly import ScanConfig, scan
from cloud.synthetic.planted import Dataset

ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Result:
    precision: float
    recall: float
    true_positives: int
    false_positives: int
    missed: int
    labels: int
    alerts: int
    scans: int
    scan_s: float
    false_by_metric: dict[str, int]
    missed_by_metric: dict[str, int]


def load(db: Database, data: Dataset, *, brand: str) -> None:
    """The dataset's stores and hourly metrics, as the rollup would have written them."""
    stores = sorted({row[0] for row in data.rows})
    with db.transaction() as tx:
        tx.executemany("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES (?, ?, ?, ?, ?, ?)",
                       [(s, brand, f"门店 {s}", "上海", iso(utcnow()), ZONE) for s in stores])
        tx.copy("store_metrics", ("store", "grain", "ts", "metric", "value"), data.rows)


def evaluate(db: Database, data: Dataset, *, eval_days: int, every: timedelta,
             publish: Publish | None = None, config: ScanConfig | None = None) -> Result:
    """Scan the last ``eval_days`` of a loaded dataset every ``every``; score the alerts against the labels."""
    config = ScanConfig(thresholds=(config or ScanConfig()).thresholds, first_lookback=every, grains=("hour",))
    zone = clock.zone(ZONE)
    first = data.start + timedelta(days=data.days - eval_days)
    end = data.start + timedelta(days=data.days)
    raised, scans, spent = [], 0, 0.0
    moment = first + every
    while moment <= end:
        began = time.perf_counter()
        raised += scan(db, publish, moment.replace(tzinfo=zone), config)
        spent += time.perf_counter() - began
        scans += 1
        moment += every
    window = (first.strftime("%Y-%m-%dT%H:00"), end.strftime("%Y-%m-%dT%H:00"))
    labels = {label for label in data.labels if window[0] <= label[2] < window[1]}
    found = {(a.store, a.metric, a.ts) for a in raised}
    hits = found & labels
    return Result(
        precision=round(len(hits) / len(found), 4) if found else 1.0,
        recall=round(len(hits) / len(labels), 4) if labels else 1.0,
        true_positives=len(hits), false_positives=len(found - labels), missed=len(labels - found),
        labels=len(labels), alerts=len(raised), scans=scans, scan_s=round(spent, 3),
        false_by_metric=dict(Counter(m for _, m, _ in found - labels)),
        missed_by_metric=dict(Counter(m for _, m, _ in labels - found)),
    )
