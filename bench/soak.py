"""Soak (and chaos) run of a whole fleet: edge boxes, guide screens, a cloud of several ingest
processes on PostgreSQL, one Mosquitto running the configuration ``instore provision
broker-config`` generates (TLS, every client with its own certificate, dynamic-security ACLs,
persistence), all on loopback (see ``bench/fleet``).

    uv run python -m bench.soak --stores 20 --cameras 4 --minutes 10 [--chaos] [--cut-s 300]

Chaos (``--chaos``): the broker killed, a store cut off, an ingest and the API killed, an edge box
killed, every ingest down while the broker restarts, a new store's box started before the broker
knows it and added live (dynamic security, no restart). Reports arrivals/s, door-to-screen latency
percentiles (all, and steady: arrivals made outside a fault), cloud CPU and memory over time with a
flat-memory check, the broker's queue depth from
its $SYS topics, and the invariants (nothing lost, no visit twice, no wrong member, every screen
back). The full figures go to a JSON file in the run's work folder; the last stdout line is a JSON
summary. Exit 0 when the invariants hold, 1 when one failed, 2 when PostgreSQL is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet import stats
from bench.fleet.cloud import NoPostgres
from bench.fleet.fleet import FAULTS, Fleet, FleetOptions
from bench.fleet.verify import produced_arrivals, verify, wait_for_cloud


def soak(options: FleetOptions) -> dict:
    """Run the fleet and return the report (raises NoPostgres when there is no server)."""
    fleet = Fleet(options)
    try:
        fleet.setup()
        run = fleet.run()
        produced = produced_arrivals(fleet.workdir, fleet.stores + fleet.late_stores)
        waited = wait_for_cloud(run.db_url, produced, timeout=60)
        screens = {store: screen.snapshot() for store, screen in run.screens.items()}
        edge_kills = sum(edge.kills for edge in run.edges.values())
        verdict = verify(produced, run.db_url, run.members, screens, run.chaos.disruptions, edge_kills)
        duration = run.ended - run.started
        cards = [seen for seen_list in screens.values() for seen in seen_list]
        roles = [p.role for p in fleet.cloud.processes] if fleet.cloud else []
        report = {
            "stores": options.stores, "cameras": options.cameras, "minutes": options.minutes,
            "rate_per_camera": options.rate, "ingest_processes": options.ingest, "chaos": options.chaos,
            "arrivals": len(produced), "arrivals_per_s": round(len(produced) / duration, 2),
            "door_to_screen": stats.latency(cards, produced, run.chaos.windows),
            "cloud": {role: {**stats.cpu(run.resources, role), "memory": stats.memory(run.resources, role)}
                      for role in roles},
            "memory_flat": all(stats.memory(run.resources, r).get("flat") is not False for r in roles),
            "cloud_timeline": stats.timeline(run.resources),
            "broker": stats.broker(run.broker_samples),
            "faults": run.chaos.summary(), "edge_exit_codes": run.edge_exit, "drain_wait_s": round(waited, 1),
            "edge_refused": edge_refused(fleet.workdir, list(run.edges)), "late_stores": fleet.late_stores,
            "invariants": verdict.as_dict(),
            "workdir": str(fleet.workdir),
        }
        fleet.write("resources.json", run.resources)
        fleet.write("broker.json", run.broker_samples)
        report["report_file"] = str(fleet.workdir / "report.json")
        fleet.write("report.json", report)
        return report
    finally:
        fleet.close()


def edge_refused(workdir: Path, stores: list[str]) -> dict[str, int]:
    """Messages each box's broker refused (PUBACK >= 0x80), kept and sent again, from its summary lines."""
    out: dict[str, int] = {}
    for store in stores:
        path = workdir / f"{store}.edge.out"
        total = 0
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                total += sum(json.loads(line).get("refused", {}).values())
            except (ValueError, AttributeError):
                continue
        out[store] = total
    return out


def summary(report: dict) -> dict:
    """The one-line JSON: the headline figures and the verdict."""
    inv = report["invariants"]
    return {
        "ok": inv["ok"], "stores": report["stores"], "cameras": report["cameras"], "minutes": report["minutes"],
        "chaos": report["chaos"], "arrivals": report["arrivals"], "arrivals_per_s": report["arrivals_per_s"],
        "door_to_screen_p50_ms": report["door_to_screen"]["steady"]["p50_ms"],
        "door_to_screen_p95_ms": report["door_to_screen"]["steady"]["p95_ms"],
        "door_to_screen_p99_ms": report["door_to_screen"]["steady"]["p99_ms"],
        "door_to_screen_all_p95_ms": report["door_to_screen"]["all"]["p95_ms"],
        "memory_flat": report["memory_flat"], "broker_stored_max": report["broker"]["stored_messages_max"],
        "lost": inv["lost"], "duplicate_visits": inv["duplicate_visits"], "wrong_member_cards": inv["wrong_member_cards"],
        "wrong_member_visits": inv["wrong_member_visits"], "screens_recovered": f"{inv['screens_recovered']}/{inv['screens']}",
        "faults_ok": all(f["ok"] for f in report["faults"]), "report_file": report["report_file"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.05, help="arrivals per second per camera")
    parser.add_argument("--ingest", type=int, default=3, help="ingest processes in the share group")
    parser.add_argument("--members", type=int, default=8, help="people enrolled; the others are visitors")
    parser.add_argument("--chaos", action="store_true")
    parser.add_argument("--cut-s", type=float, default=300.0, help="seconds the cut store stays offline")
    parser.add_argument("--broker-signal", choices=["KILL", "TERM"], default="KILL",
                        help="KILL: a broker crash; TERM: an operator restart")
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=None, help="with --chaos: these faults only")
    parser.add_argument("--ingest-down-s", type=float, default=10.0,
                        help="seconds every ingest is down around the broker's restart")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    options = FleetOptions(stores=opts.stores, cameras=opts.cameras, minutes=opts.minutes, rate=opts.rate,
                           ingest=opts.ingest, members=opts.members, chaos=opts.chaos, cut_s=opts.cut_s,
                           broker_signal=getattr(signal, f"SIG{opts.broker_signal}"), sample_s=opts.sample_s,
                           faults=tuple(opts.faults) if opts.faults else None, ingest_down_s=opts.ingest_down_s,
                           keep=opts.keep)
    try:
        report = soak(options)
    except NoPostgres as exc:
        print(f"soak skipped: {exc}", file=sys.stderr)
        print(json.dumps({"ok": None, "skipped": str(exc)}))
        raise SystemExit(2) from None
    print(json.dumps(report, ensure_ascii=False), file=sys.stderr)
    print(json.dumps(summary(report), ensure_ascii=False))
    raise SystemExit(0 if report["invariants"]["ok"] else 1)


if __name__ == "__main__":
    main()
