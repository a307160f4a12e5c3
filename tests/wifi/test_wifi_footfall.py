"""Footfall on the real lab captures: empty room near zero, the class better than naive counting."""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

from edge.wifi.calibration import calibrate
from edge.wifi.rules import PresenceRules
from protocol.wifi import device_key

from .conftest import EMPTY_DAY, LAB_DAY, LAB_EQUIPMENT, LAB_TRUTH, SECRET

BENCH = Path(__file__).resolve().parents[2] / "bench" / "footfall.py"
spec = importlib.util.spec_from_file_location("bench_footfall", BENCH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_empty_room_estimates_near_zero_after_background_learning(parsed):
    """Default rules and online learning only: nothing from the baseline is used here."""
    minutes = bench.estimate(parsed[EMPTY_DAY.name].observations, PresenceRules(), set())
    people = [m.people for m in minutes.values()]
    assert len(minutes) > 20 * 60 // 2
    assert statistics.fmean(people) < 0.1 and max(people) <= 2
    assert sum(m.background for m in minutes.values()) > 0


def test_calibration_on_the_empty_day(parsed):
    cal = calibrate(parsed[EMPTY_DAY.name].observations, PresenceRules().background_hours // 2)
    assert cal.rssi_min_dbm == -80 and cal.outside_max_dbm == -84
    assert len(cal.background_keys) >= 5


def test_lab_footfall_beats_naive_distinct_macs(parsed):
    lab = parsed[LAB_DAY.name].observations
    cal = calibrate(parsed[EMPTY_DAY.name].observations, PresenceRules().background_hours // 2)
    equipment = {device_key(mac, SECRET) for mac in LAB_EQUIPMENT} | set(cal.background_keys)
    minutes = bench.estimate(lab, PresenceRules(rssi_min_dbm=cal.rssi_min_dbm), equipment)
    truth = bench.truth_per_minute(LAB_TRUTH, lab[0].ts)
    assert len(truth) == 115
    mae = statistics.fmean(abs(minutes[m].people - t) for m, t in truth.items())
    naive = statistics.fmean(abs(minutes[m].distinct_macs - t) for m, t in truth.items())
    print(f"lab footfall: mae_people={mae:.2f} naive_mae_people={naive:.2f}")
    assert mae < 0.3 * naive
    assert mae < 4.0
