"""Figures of a fleet run: arrival rate, door-to-screen latency, cloud CPU and memory, broker queue."""

from __future__ import annotations

import numpy as np

from bench.fleet.screen import Seen

#: Memory counts as flat when the fitted growth over the run stays below both of these.
FLAT_MB = 20.0
FLAT_FRACTION = 0.10
#: Seconds after a fault during which an arrival's latency does not count as steady-state.
RECOVERY_S = 60.0


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    arr = np.asarray(values)
    return {"n": len(values), "p50_ms": round(float(np.percentile(arr, 50)), 1),
            "p95_ms": round(float(np.percentile(arr, 95)), 1), "p99_ms": round(float(np.percentile(arr, 99)), 1),
            "max_ms": round(float(arr.max()), 1)}


def latency(cards: list[Seen], produced: dict[str, dict], windows: list[tuple[float, float]]) -> dict:
    """Door-to-screen of each arrival's first card; "steady" leaves out arrivals made during a fault
    or within ``RECOVERY_S`` after it (an edge box backs off up to 30 s between reconnects, and a
    backlog takes a while to drain)."""
    first: dict[str, Seen] = {}
    for seen in sorted(cards, key=lambda s: s.received):
        first.setdefault(seen.arrival_event_id, seen)
    every = [s.latency_ms for s in first.values()]

    def in_fault(event: str) -> bool:
        ts = produced.get(event, {}).get("ts", 0.0)
        return any(start - 1 <= ts <= end + RECOVERY_S for start, end in windows)

    steady = [s.latency_ms for event, s in first.items() if not in_fault(event)]
    return {"all": percentiles(every), "steady": percentiles(steady)}


def memory(samples: list[dict], role: str) -> dict:
    """RSS of one process over the run (its longest-lived pid, as a restart starts over): start, end,
    fitted slope after the first quarter (imports, pools and caches filling), flat or not."""
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for row in samples:
        if role in row:
            by_pid.setdefault(row[role]["pid"], []).append((row["t"], row[role]["rss_mb"]))
    best = max(by_pid.values(), key=len, default=[])
    if len(best) < 4:
        return {"samples": len(best), "flat": None}
    warm = best[len(best) // 4:]
    t, rss = np.array([p[0] for p in warm]), np.array([p[1] for p in warm])
    slope = float(np.polyfit(t, rss, 1)[0]) * 60  # MB per minute
    growth = slope * (t[-1] - t[0]) / 60
    return {"samples": len(best), "rss_start_mb": round(float(best[0][1]), 1), "rss_end_mb": round(float(best[-1][1]), 1),
            "rss_max_mb": round(max(r for _, r in best), 1), "slope_mb_per_min": round(slope, 3),
            "flat": bool(growth < FLAT_MB and growth < FLAT_FRACTION * float(rss.mean()))}


def cpu(samples: list[dict], role: str) -> dict:
    values = [row[role]["cpu"] for row in samples if role in row]
    if not values:
        return {"mean_pct": None, "max_pct": None}
    return {"mean_pct": round(float(np.mean(values)), 1), "max_pct": round(float(np.max(values)), 1)}


def broker(samples: list[dict]) -> dict:
    stored = [row["stored_messages"] for row in samples if "stored_messages" in row]
    clients = [row["clients_connected"] for row in samples if "clients_connected" in row]
    return {"stored_messages_max": max(stored, default=None), "stored_messages_end": stored[-1] if stored else None,
            "clients_connected_max": max(clients, default=None), "samples": len(samples)}


def timeline(samples: list[dict], every_s: float = 60.0) -> list[dict]:
    """One row per ``every_s``: summed cloud CPU and RSS, for the report's table."""
    rows, next_t = [], 0.0
    for row in samples:
        if row["t"] < next_t:
            continue
        procs = [v for k, v in row.items() if k != "t"]
        rows.append({"t_s": row["t"], "cloud_cpu_pct": round(sum(p["cpu"] for p in procs), 1),
                     "cloud_rss_mb": round(sum(p["rss_mb"] for p in procs), 1)})
        next_t = row["t"] + every_s
    return rows
