"""What each benchmark is run with (full and ``--quick`` sizes) and which of its JSON figures have
a target, for ``bench/report.py``. Targets come from the mission and the issues: a member's card
on screen within a second, the edge's fps and latency budget, the CDP's scale figures, anomaly
precision and recall >= 0.9, dashboards under 2 s, the product's MQTT leg within 1.5x of bare paho.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

WIFI = "../shared/data/wifi/fryza-sc6-61"
#: The lab's fixed computers, as the capture's README lists them (an installer's --background-mac list).
LAB_EQUIPMENT = """dc:fb:48:68:be:e4 dc:fb:48:8c:71:fc dc:fb:48:2a:52:e0 dc:fb:48:f5:c6:c2 dc:fb:48:e3:ab:78
dc:fb:48:00:51:90 dc:fb:48:75:d8:42 dc:fb:48:de:86:8d dc:fb:48:dd:c6:0b dc:fb:48:55:d5:78 dc:fb:48:c2:1d:64
40:ec:99:f9:34:a6 40:ec:99:8e:3f:63 40:ec:99:1f:3e:75""".split()
_FOOTFALL_ARGS = (
    "--pcap", f"{WIFI}/sc6-61_2022-10-19_anonymized.pcap", "--truth", f"{WIFI}/sc6-61_2022-10-19_ver-99.csv",
    "--baseline", f"{WIFI}/sc6-61_2024-03-31_anonymized.pcap",
    *[arg for mac in LAB_EQUIPMENT for arg in ("--background-mac", mac)],
)

Value = Callable[[dict], object]
Check = Callable[[dict], bool]


@dataclass(frozen=True)
class Figure:
    key: str  # JSON key, or a label when ``get`` computes the value
    label: str
    target: str = ""
    check: Check | None = None
    get: Value | None = None
    unit: str = ""

    def value(self, result: dict) -> object:
        return self.get(result) if self.get else result.get(self.key)

    def verdict(self, result: dict) -> str:
        if self.check is None:
            return "-"
        try:
            return "met" if self.check(result) else "missed"
        except (KeyError, TypeError):
            return "missed"


@dataclass(frozen=True)
class Bench:
    name: str
    script: str  # bench/<script>.py
    full: tuple[str, ...]
    quick: tuple[str, ...]
    figures: tuple[Figure, ...]
    details: Callable[[dict], list[str]] | None = field(default=None)


def _soak_details(result: dict) -> list[str]:
    """The soak's method, faults, invariants and the cloud's CPU and memory over time (from its report file)."""
    lines = [
        "## Soak and chaos",
        "",
        f"`bench/soak.py`: {result.get('stores')} simulated stores x {result.get('cameras')} cameras for "
        f"{result.get('minutes')} minutes{' with chaos' if result.get('chaos') else ''}, {result.get('arrivals')} arrivals. "
        "Each store's edge box is a process publishing through the product's SQLite outbox and publisher (the "
        "embeddings are the real pack's, of the photos in ../shared/data/faces; 8 people enrolled as members, the "
        "others visitors), its guide screen applies `kiosk/guide_screen/board.py` and sends feedback, and both reach Mosquitto "
        "through a per-store TCP link that can be cut; the cloud is 3 `instore cloud serve` ingest processes "
        "(share group, `--client-id`) and one API process on a fresh PostgreSQL database. Latency is door-to-screen "
        "(capture time in the arrival to the card at the screen); steady leaves out arrivals made during a fault or "
        "within 60 s after it.",
        "",
    ]
    path = Path(str(result.get("report_file", "")))
    if not path.is_file():
        return lines
    report = json.loads(path.read_text())
    inv = report["invariants"]
    lines += ["| fault | at | ok |", "|---|---|---|"]
    lines += [f"| {f['fault']} | {f['at_s']:.0f} s | {'yes' if f['ok'] else f['error']} |" for f in report["faults"]]
    lines += ["", f"Invariants: {inv['produced']} arrivals produced, {inv['in_cloud']} in the cloud, {inv['lost']} lost, "
              f"{inv['duplicate_visits']} visits duplicated, {inv['wrong_member_visits']} visits and "
              f"{inv['wrong_member_cards']} cards naming a wrong member ({inv['member_visits']} member and "
              f"{inv['visitor_visits']} visitor visits), {inv['cards_received']} cards received by the screens, "
              f"{inv['screens_recovered']}/{inv['screens']} screens receiving cards after the last fault, "
              f"{inv['footfall_minutes']} footfall minutes stored.", ""]
    lines += ["| cloud process | CPU mean / max (% of a core) | RSS start -> end (MB) | slope after warm-up | flat |",
              "|---|---|---|---|---|"]
    for role, row in report["cloud"].items():
        mem = row["memory"]
        lines.append(f"| {role} | {row['mean_pct']} / {row['max_pct']} | {mem.get('rss_start_mb')} -> {mem.get('rss_end_mb')} "
                     f"| {mem.get('slope_mb_per_min')} MB/min | {mem.get('flat')} |")
    lines += ["", "| minute | cloud CPU (sum, %) | cloud RSS (sum, MB) |", "|---|---|---|"]
    lines += [f"| {row['t_s'] / 60:.0f} | {row['cloud_cpu_pct']} | {row['cloud_rss_mb']} |" for row in report["cloud_timeline"]]
    broker = report["broker"]
    lines += ["", f"Broker ($SYS, every second): at most {broker['stored_messages_max']} messages held "
              f"(queued, in flight and retained), {broker['stored_messages_end']} at the end; "
              f"up to {broker['clients_connected_max']} clients. Door-to-screen, all arrivals: "
              f"{report['door_to_screen']['all']}; steady: {report['door_to_screen']['steady']}.", ""]
    return lines


BENCHES: tuple[Bench, ...] = (
    Bench("soak", "soak", ("--stores", "20", "--cameras", "4", "--minutes", "10", "--chaos"),
          ("--stores", "5", "--cameras", "4", "--minutes", "2", "--chaos", "--cut-s", "20"), (
        Figure("ok", "invariants (nothing lost or doubled, no wrong member, screens back)", "true",
               lambda r: r["ok"] is True),
        Figure("arrivals_per_s", "arrivals/s"),
        Figure("door_to_screen_p50_ms", "door-to-screen p50 (steady)", unit=" ms"),
        Figure("door_to_screen_p95_ms", "door-to-screen p95 (steady)", "< 1000 ms",
               lambda r: r["door_to_screen_p95_ms"] < 1000, unit=" ms"),
        Figure("door_to_screen_p99_ms", "door-to-screen p99 (steady)", unit=" ms"),
        Figure("door_to_screen_all_p95_ms", "door-to-screen p95 incl. faults", unit=" ms"),
        Figure("lost", "arrivals lost", "0", lambda r: r["lost"] == 0),
        Figure("duplicate_visits", "visits duplicated", "0", lambda r: r["duplicate_visits"] == 0),
        Figure("wrong_member_cards", "cards for a wrong member", "0", lambda r: r["wrong_member_cards"] == 0),
        Figure("screens_recovered", "screens receiving cards after the faults", "all",
               lambda r: len(set(r["screens_recovered"].split("/"))) == 1),
        Figure("memory_flat", "cloud memory flat", "true", lambda r: r["memory_flat"] is True),
        Figure("broker_stored_max", "broker stored messages, max"),
    ), _soak_details),
    Bench("mqtt_ratio", "mqtt_ratio", ("--messages", "600"), ("--messages", "200"), (
        Figure("ratio_p50", "product MQTT leg / bare paho, p50", "<= 1.5x", lambda r: r["ratio_p50"] <= 1.5, unit="x"),
        Figure("bare_p50_ms", "bare paho publish->subscriber p50", unit=" ms"),
        Figure("product_p50_ms", "outbox+publisher->decoding subscriber p50", unit=" ms"),
        Figure("ratio_p95", "ratio at p95", unit="x"),
        Figure("ratio_after_commit_p50", "same from the outbox put's return, p50", "<= 1.5x",
               lambda r: r["ratio_after_commit_p50"] <= 1.5, unit="x"),
    )),
    Bench("door_to_screen", "door_to_screen", ("--arrivals", "200", "--rate", "5"), ("--arrivals", "60", "--rate", "5"), (
        Figure("p95_ms", "one store, door to screen p95 at 5 arrivals/s", "< 1000 ms", lambda r: r["p95_ms"] < 1000,
               unit=" ms"),
        Figure("p50_ms", "door to screen p50", unit=" ms"),
    )),
    Bench("ingest_capacity", "ingest_capacity", (), ("--processes", "1,2", "--rates", "25,50,100,200,400,800", "--step-s", "4"), (
        *(Figure(engine, f"arrivals/s into cards with p95 < 100 ms, {name}, 1 ingest process", ">= 1000",
                 lambda r, e=engine: r["arrivals_per_s_at_p95_under_100ms"][e] >= 1000,
                 get=lambda r, e=engine: r["arrivals_per_s_at_p95_under_100ms"][e])
          for engine, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"))),
        Figure("postgresql_scaling", "same on PostgreSQL by ingest processes", get=lambda r: r["postgresql_scaling"]),
    )),
    Bench("pack_switch", "pack_switch", ("--cameras", "4", "--rounds", "5"), ("--cameras", "4", "--rounds", "2"), ()),
    Bench("health_api", "health_api", (), ("--stores", "20", "--days", "60", "--persons", "5000", "--repeats", "5"), ()),
    Bench("edge_throughput", "edge_throughput", ("--cameras", "4", "--resolution", "640x480", "--pack", "yunet",
                                                 "--seconds", "600"),
          ("--cameras", "4", "--resolution", "640x480", "--pack", "yunet", "--seconds", "30"), (
        Figure("fps_total", "frames/s over 4 cameras", ">= 40", lambda r: r["fps_total"] >= 40),
        Figure("p95_frame_ms", "p95 frame", unit=" ms"),
        Figure("rss_growth", "RSS growth", "< 20 MB (flat)", lambda r: r["rss_mb_end"] - r["rss_mb_start"] < 20,
               get=lambda r: round(r["rss_mb_end"] - r["rss_mb_start"], 1), unit=" MB"),
    )),
    Bench("arrival_latency", "arrival_latency", ("--pack", "yunet", "--rounds", "5"), ("--pack", "yunet", "--rounds", "2"), (
        Figure("p95_ms", "first usable face -> arrival at a subscriber, p95", "< 150 ms", lambda r: r["p95_ms"] < 150,
               unit=" ms"),
    )),
    Bench("calibrate", "calibrate", ("--faces", "../shared/data/faces"), ("--faces", "../shared/data/faces"), (
        Figure("impostor_max", "highest impostor cosine", "< the pack's threshold",
               lambda r: r["impostor_max"] < r["current_threshold"]),
        Figure("current_threshold", "pack threshold"),
        Figure("false_rejects_at_suggested", "one-photo enrolment false rejects"),
    )),
    Bench("cdp_scale", "cdp_scale", ("--members", "100000"), ("--members", "10000"), (
        Figure("oneid_rebuild_s", "OneID full rebuild", "< 60 s at 1M records", lambda r: r["oneid_rebuild_s"] < 60, unit=" s"),
        Figure("segment_count_s", "segment count", "< 1 s", lambda r: r["segment_count_s"] < 1, unit=" s"),
        Figure("profile_read_p95_ms", "profile read p95", "< 20 ms", lambda r: r["profile_read_p95_ms"] < 20, unit=" ms"),
        Figure("face_top1_ms", "face top-1", "< 5 ms", lambda r: r["face_top1_ms"] < 5, unit=" ms"),
    )),
    # Quick and full are the same: the capture takes ~15 s, and without the empty-room baseline and
    # the installer's equipment list the estimate counts the lab's PCs (docs/WIFI.md).
    Bench("footfall", "footfall", _FOOTFALL_ARGS, _FOOTFALL_ARGS, (
        Figure("mae_people", "footfall MAE (people/minute)", "< naive distinct MACs",
               lambda r: r["mae_people"] < r["naive_mae_people"]),
        Figure("naive_mae_people", "naive MAE"),
    )),
    Bench("markdown", "markdown", ("--products", "300"), ("--products", "100"), (
        Figure("value vs 30% off on the last day, all unknowns", "planner value / the rule's, demand it does not know",
               "> 1", lambda r: r["scenarios"]["all"]["planner_vs_rule"]["value"] > 1,
               get=lambda r: r["scenarios"]["all"]["planner_vs_rule"]["value"], unit="x"),
        Figure("waste vs 30% off on the last day, all unknowns", "planner waste / the rule's, same demand", "< 1",
               lambda r: r["scenarios"]["all"]["planner_vs_rule"]["waste"] < 1,
               get=lambda r: r["scenarios"]["all"]["planner_vs_rule"]["waste"], unit="x"),
        Figure("scenarios where the planner beats the rule", "scenarios (of 6) where the planner's value beats the rule",
               "6", lambda r: len(r["planner_value_beats_rule_in"]) == len(r["scenarios"]),
               get=lambda r: len(r["planner_value_beats_rule_in"])),
    )),
    Bench("recommend", "recommend", ("--members", "20000"), ("--members", "3000"), (
        Figure("category_hit_rate_at_5", "next order's category in top 5", "> popularity",
               lambda r: r["category_hit_rate_at_5"] > r["popularity_category_hit_rate_at_5"]),
        Figure("popularity_category_hit_rate_at_5", "popularity baseline"),
        Figure("p95_ms", "per arrival p95", unit=" ms"),
    )),
    Bench("anomaly", "anomaly", (), ("--stores", "5", "--weeks", "6"), (
        Figure("precision", "anomaly precision (planted)", ">= 0.9", lambda r: r["precision"] >= 0.9),
        Figure("recall", "anomaly recall (planted)", ">= 0.9", lambda r: r["recall"] >= 0.9),
        Figure("scan_ms_per_store_per_scan", "scan per store", unit=" ms"),
    )),
    Bench("dashboard_load", "dashboard_load", (), ("--stores", "20", "--repeats", "2"), (
        Figure("all_under_target", "every page drawn under 2 s (a year of data)", "true",
               lambda r: r["all_under_target"] is True),
        Figure("slowest_max_ms", "slowest page load", "< 2000 ms", lambda r: max(p["max_ms"] for p in r["pages"].values()) < 2000,
               get=lambda r: max(p["max_ms"] for p in r["pages"].values()), unit=" ms"),
    )),
)
