"""Per-store calibration from labelled outcomes (issue 18 item 4), and pack-scaled doubt steps.

Cosine scores are not comparable across recognisers: MobileFaceNet's genuine and impostor scores
sit ~0.36 apart (median genuine minus median top impostor on the dev set), dlib's ~0.034. So every
absolute step tuned for MobileFaceNet is scaled by ``score_gap(pack) / REFERENCE_GAP``.

The store offset is added to the pack's threshold at that store and is never negative: a store can
only become stricter than the pack's own calibration. Each "不是本人" (a wrong member shown, label
``not_this_person`` in ``match_labels``) raises it by ``STORE_STEP`` (0.01, scaled), with a weight
that halves every ``HALF_LIFE_DAYS`` (30) days, counted over the last ``WINDOW_DAYS``; it is capped at
``STORE_MAX`` (0.05, scaled). Confirmed and rejected uncertain answers do not move it: they were
never shown as the member. A raised offset moves borderline faces from "member" into the uncertain
band (the card asks) rather than dropping them.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from cloud.clock import iso, utcnow
from cloud.db import Database
from protocol.facepack.manifests import ModelPack

#: Median genuine score minus median top-impostor score on the dev set (bench/openset.py).
SCORE_GAP: dict[str, float] = {"scrfd500m-mbf": 0.36, "yunet-mbf": 0.36, "yunet-dlib": 0.034}
REFERENCE_GAP = 0.36
STORE_STEP = 0.01
STORE_MAX = 0.05
HALF_LIFE_DAYS = 30.0
WINDOW_DAYS = 180
#: The offset is recomputed at most this often per store (the calibration is slow by design).
CACHE_S = 300.0


def score_gap(pack: ModelPack) -> float:
    return SCORE_GAP.get(pack.id, REFERENCE_GAP)


def scale(pack: ModelPack) -> float:
    """How much one MobileFaceNet cosine step is worth in this pack's scores."""
    return score_gap(pack) / REFERENCE_GAP


def store_offset(db: Database, store: str, pack: ModelPack, *, now: datetime | None = None) -> float:
    """The extra similarity this store demands on top of the pack's threshold: >= 0, <= STORE_MAX (scaled)."""
    now = now or utcnow()
    rows = db.rows("SELECT ts FROM match_labels WHERE store = ? AND label = 'not_this_person' AND ts >= ?",
                   (store, iso(now - timedelta(days=WINDOW_DAYS))))
    weight = 0.0
    for (ts,) in rows:
        age_days = max(0.0, (now - datetime.fromisoformat(ts)).total_seconds() / 86400)
        weight += 0.5 ** (age_days / HALF_LIFE_DAYS)
    return min(STORE_MAX, STORE_STEP * weight) * scale(pack)


class StoreOffsets:
    """``store_offset`` per store, cached for ``CACHE_S`` so an arrival costs no query."""

    def __init__(self, db: Database, pack: ModelPack, *, cache_s: float = CACHE_S) -> None:
        self._db, self._pack, self._cache_s = db, pack, cache_s
        self._cache: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def get(self, store: str | None) -> float:
        if store is None:
            return 0.0
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(store)
        if hit is not None and now - hit[1] < self._cache_s:
            return hit[0]
        offset = store_offset(self._db, store, self._pack)
        with self._lock:
            self._cache[store] = (offset, now)
        return offset

    def forget(self, store: str | None = None) -> None:
        with self._lock:
            if store is None:
                self._cache.clear()
            else:
                self._cache.pop(store, None)
