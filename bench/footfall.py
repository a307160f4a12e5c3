"""Footfall accuracy on a capture with per-frame ground truth.

    uv run python bench/footfall.py --pcap CAPTURE.pcap --truth CAPTURE.csv \
        [--baseline EMPTY.pcap] [--background-mac MAC ...]

The truth CSV is ``;``-separated with ``datetime`` (local time of the capture) and ``occupancy``
per frame (the fryza-sc6-61 format). Its time zone is inferred from the offset between its first
row and the capture's first frame. Truth per minute is the mean occupancy of that minute's
frames; the estimate is the engine's ``WifiFootfall.people`` for that minute (0 if none was
published); the naive count is distinct MACs heard in the minute. ``--baseline`` calibrates the
RSSI threshold and equipment on an empty-store capture first (as ``wifi calibrate`` does) and
reports what the engine estimates on the baseline itself. The last line is JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import secrets
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.placement import Placement
from edge.wifi.background import Background
from edge.wifi.calibration import calibrate
from edge.wifi.engine import WifiEngine
from edge.wifi.frames import ProbeParser
from edge.wifi.keys import DeviceKeyer
from edge.wifi.observation import Observation
from edge.wifi.rules import PresenceRules
from edge.wifi.sources import replay
from protocol.messages import Message
from protocol.wifi import WifiFootfall, device_key

QUARTER_HOUR = 900


class Minutes:
    """A sink that keeps the footfall messages by minute."""

    def __init__(self) -> None:
        self.by_minute: dict[int, WifiFootfall] = {}

    def put(self, topic: str, message: Message) -> None:
        if isinstance(message, WifiFootfall):
            self.by_minute[int(message.minute.timestamp())] = message


def estimate(observations: list[Observation], rules: PresenceRules, equipment: set[str]) -> dict[int, WifiFootfall]:
    sink = Minutes()
    engine = WifiEngine(Placement("bench", "bench", "bench"), rules, sink, Background(rules.background_hours, equipment))
    for obs in observations:
        engine.feed(obs)
    engine.finish()
    return sink.by_minute


def truth_per_minute(path: Path, first_capture_ts: float) -> dict[int, float]:
    with path.open(newline="") as f:
        rows = [(datetime.fromisoformat(r["datetime"]), float(r["occupancy"])) for r in csv.DictReader(f, delimiter=";")]
    first_local = rows[0][0].replace(tzinfo=UTC).timestamp()
    offset = round((first_local - first_capture_ts) / QUARTER_HOUR) * QUARTER_HOUR
    minutes: dict[int, list[float]] = defaultdict(list)
    for local, occupancy in rows:
        ts = local.replace(tzinfo=UTC).timestamp() - offset
        minutes[int(ts // 60) * 60].append(occupancy)
    return {m: statistics.fmean(v) for m, v in minutes.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcap", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, help="empty-store capture to calibrate on")
    ap.add_argument("--background-mac", action="append", default=[], help="known equipment (repeatable)")
    ap.add_argument("--rssi-min", type=int, help="override the RSSI threshold")
    args = ap.parse_args()

    secret = secrets.token_bytes(32)
    equipment = {device_key(mac, secret) for mac in args.background_mac}
    rules = PresenceRules()
    report: dict[str, object] = {"pcap": args.pcap.name}
    started = time.perf_counter()
    if args.baseline:
        base = list(replay(args.baseline, ProbeParser(DeviceKeyer(secret))))
        cal = calibrate(base, rules.background_hours // 2, equipment)
        rules = rules.model_copy(update={"rssi_min_dbm": cal.rssi_min_dbm})
        learned = set(cal.background_keys) - equipment
        equipment |= learned
        empty = [m.people for m in estimate(base, rules, equipment).values()]
        report |= {"baseline": args.baseline.name, "calibrated_rssi_min_dbm": cal.rssi_min_dbm,
                   "baseline_equipment_learned": len(learned),
                   "baseline_people_mean": round(statistics.fmean(empty), 3), "baseline_people_max": max(empty)}
    if args.rssi_min is not None:
        rules = rules.model_copy(update={"rssi_min_dbm": args.rssi_min})

    parser = ProbeParser(DeviceKeyer(secret))
    observations = list(replay(args.pcap, parser))
    minutes = estimate(observations, rules, equipment)
    truth = truth_per_minute(args.truth, observations[0].ts)
    ours = [abs((minutes[m].people if m in minutes else 0) - t) for m, t in truth.items()]
    naive = [abs((minutes[m].distinct_macs if m in minutes else 0) - t) for m, t in truth.items()]
    bias = statistics.fmean((minutes[m].people if m in minutes else 0) - t for m, t in truth.items())
    mae, naive_mae = statistics.fmean(ours), statistics.fmean(naive)
    report |= {
        "minutes": len(truth), "frames": parser.stats.frames, "probes": parser.stats.probes,
        "malformed": sum(parser.stats.malformed.values()), "rssi_min_dbm": rules.rssi_min_dbm,
        "equipment_keys": len(equipment), "truth_mean_people": round(statistics.fmean(truth.values()), 2),
        "mae_people": round(mae, 3), "naive_mae_people": round(naive_mae, 3),
        "mae_ratio_to_naive": round(mae / naive_mae, 3) if naive_mae else None,
        "bias_people": round(bias, 3),
        "within_1_pct": round(100 * sum(e <= 1 for e in ours) / len(ours), 1),
        "within_3_pct": round(100 * sum(e <= 3 for e in ours) / len(ours), 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
