"""Edge throughput: frames per second and per-frame latency of the full face pipeline (detect,
quality gates, track, embed, one arrival per visit) over replayed video, one worker per camera,
as the box runs it. The last stdout line is JSON.

    uv run python bench/edge_throughput.py --cameras 4 --resolution 640x480 --pack yunet --seconds 30 \
        [--zone 0.05,0.1,0.8,0.9] [--detect-for-min-face --min-face-px 48]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import people_walking
from edge.pipeline import FacePipeline
from edge.placement import Placement
from edge.sources import Frame
from edge.state import StateFile
from edge.visits import VisitRegistry
from protocol.device import RemoteSettings
from protocol.facepack import PACKS
from protocol.facepack.engine import FaceEngine


def pack_id(name: str) -> str:
    """A pack id, or its start: ``yunet`` is the first pack listed that starts so (yunet-mbf)."""
    if name in PACKS:
        return name
    matches = [p for p in PACKS if p.startswith(name)]
    if not matches:
        raise SystemExit(f"--pack {name!r} names none of {', '.join(PACKS)}")
    return matches[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--resolution", default="640x480")
    parser.add_argument("--pack", default="yunet")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--detect-for-min-face", action="store_true",
                        help="gates.detect_for_min_face: YuNet runs on the frame scaled to the smallest face the gates take")
    parser.add_argument("--min-face-px", type=int, default=None, help="gates.min_face_px (default: the pack's)")
    parser.add_argument("--zone", default=None, help="every camera's door zone: left,top,right,bottom fractions")
    opts = parser.parse_args()
    size = tuple(int(v) for v in opts.resolution.lower().split("x"))
    pack = pack_id(opts.pack)
    frames = people_walking(size)
    threads = max(1, (os.cpu_count() or 2) // opts.cameras)
    state = StateFile(Path(tempfile.mkdtemp(prefix="edge-bench-")) / "state.db")
    gates = {"detect_for_min_face": opts.detect_for_min_face, "min_face_px": opts.min_face_px}
    zone = tuple(float(v) for v in opts.zone.split(",")) if opts.zone else None
    settings = RemoteSettings(cameras=[{"id": f"cam{n}", "source": "bench", "zone": zone} for n in range(opts.cameras)],
                              gates=gates)
    visits = VisitRegistry(state, settings.visits, PACKS[pack].match_threshold)
    pipelines = [FacePipeline(FaceEngine.load(pack, threads=threads), Placement("bench", "s1", "e1"), settings, visits, f"cam{n}")
                 for n in range(opts.cameras)]
    process = psutil.Process()
    latencies: list[list[float]] = [[] for _ in pipelines]
    cpu_ms: list[list[float]] = [[] for _ in pipelines]  # each camera thread's own CPU time per frame
    stop = threading.Event()

    def camera(n: int) -> None:
        index = 0
        while not stop.is_set():
            image = frames[index % len(frames)]
            started, cpu = time.perf_counter(), time.thread_time()
            pipelines[n].process(Frame(f"cam{n}", index, datetime.now(UTC), image, f"#{index}", f"loop{index // len(frames)}"))
            latencies[n].append((time.perf_counter() - started) * 1000)
            cpu_ms[n].append((time.thread_time() - cpu) * 1000)
            index += 1

    workers = [threading.Thread(target=camera, args=(n,), daemon=True) for n in range(opts.cameras)]
    for w in workers:
        w.start()
    time.sleep(min(5.0, opts.seconds / 5))  # warm-up: first inferences, allocator growth
    rss_start = process.memory_info().rss / 2**20
    counted = [len(seen) for seen in latencies]
    began = time.monotonic()
    time.sleep(opts.seconds)
    elapsed = time.monotonic() - began
    done = [len(seen) for seen in latencies]
    rss_end = process.memory_info().rss / 2**20
    stop.set()
    for w in workers:
        w.join()
    window = [v for seen, c, d in zip(latencies, counted, done) for v in seen[c:d]]
    cpu_window = [v for seen, c, d in zip(cpu_ms, counted, done) for v in seen[c:d]]
    stats = [p.stats for p in pipelines]
    result = {
        "cameras": opts.cameras, "resolution": opts.resolution, "pack": pack, "seconds": round(elapsed, 1),
        "detect_scale": pipelines[0].detect_scale, "zone": zone,
        "fps_total": round(sum(d - c for c, d in zip(counted, done)) / elapsed, 1),
        "p50_frame_ms": round(float(np.percentile(window, 50)), 1),
        "p95_frame_ms": round(float(np.percentile(window, 95)), 1),
        # CPU time is what the pipeline costs whatever else runs on the machine (with one thread per
        # camera, onnxruntime and OpenCV compute in the camera's own thread): the frame rate the
        # box's cores would give with nothing else running is cores / mean CPU per frame.
        "cpu_ms_per_frame": round(float(np.mean(cpu_window)), 2),
        "fps_if_alone": round((os.cpu_count() or 1) * 1000 / float(np.mean(cpu_window)), 1) if threads == 1 else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "rss_mb_start": round(rss_start, 1), "rss_mb_end": round(rss_end, 1),
        "arrivals": sum(s.arrivals for s in stats), "tracks": sum(s.tracks for s in stats),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
