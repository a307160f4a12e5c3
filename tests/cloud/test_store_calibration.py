"""Issue 18 item 4: the per-store threshold offset from labelled outcomes: never negative (never
looser than the pack), 0.01 per "不是本人", halving every 30 days, at most 0.05, scaled by the pack's
score gap (dlib's cosines sit ~10x closer together than MobileFaceNet's)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud.clock import iso, utcnow
from cloud.faces import calibration
from protocol.facepack import get_pack


def _wrong(db, store: str, days_ago: float, n: int, label: str = "not_this_person") -> None:
    for i in range(n):
        db.execute("INSERT INTO match_labels (visit_id, label, member_id, score, brand, store, device, feedback_id, ts) "
                   "VALUES (?, ?, 'm1', 0.6, 'demo', ?, 'e1', ?, ?)",
                   (f"v-{store}-{days_ago}-{i}-{label}", label, store, f"f{i}", iso(utcnow() - timedelta(days=days_ago))))


def test_store_offset_rises_with_wrong_members_decays_and_is_bounded(db) -> None:
    mbf, dlib = get_pack("scrfd500m-mbf"), get_pack("yunet-dlib")
    assert calibration.store_offset(db, "s1", mbf) == 0.0
    _wrong(db, "s1", 0, 1)
    _wrong(db, "s1", 0, 3, label="confirmed")
    _wrong(db, "s1", 0, 2, label="rejected")
    assert calibration.store_offset(db, "s1", mbf) == pytest.approx(0.01, abs=1e-4)
    assert calibration.store_offset(db, "s1", dlib) == pytest.approx(0.01 * 0.034 / 0.36, abs=1e-5)
    _wrong(db, "s2", 30, 1)
    assert calibration.store_offset(db, "s2", mbf) == pytest.approx(0.005, abs=1e-4)
    _wrong(db, "s3", 0, 12)
    assert calibration.store_offset(db, "s3", mbf) == pytest.approx(calibration.STORE_MAX)
    _wrong(db, "s4", 365, 5)
    assert calibration.store_offset(db, "s4", mbf) == 0.0, "outside the window"
    offsets = calibration.StoreOffsets(db, mbf)
    assert offsets.get("s1") == pytest.approx(0.01, abs=1e-4) and offsets.get(None) == 0.0
