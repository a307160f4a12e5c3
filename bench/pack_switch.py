"""Pack switch time on the edge: what a box does on a ``cmd/pack`` command before it acks, i.e.
verify the brand's signature and every file's sha256 (``edge.install.verify_pack``, as at
start-up) and load one ``FaceEngine`` per camera; the swap itself is a reference handed to each
camera thread, taken between two frames. Packs are signed with a throw-away brand (provisioning).
The last stdout line is JSON.

    uv run python bench/pack_switch.py --cameras 4 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.install import verify_pack
from protocol.bundle import load_bundle
from protocol.facepack import get_pack, models_dir
from protocol.facepack.engine import FaceEngine
from provisioning import fleet
from provisioning.registry import Home
from provisioning.signing import sign_pack

PACKS = ("yunet-mbf", "scrfd500m-mbf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4, help="engines loaded per switch (one per camera)")
    parser.add_argument("--rounds", type=int, default=5, help="switches per pack")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = Home(root / "provision")
        fleet.init(home, "bench", "mqtts://127.0.0.1:8883", ["127.0.0.1"])
        fleet.create_store(home, "s1")
        fleet.create_device(home, "s1", "edge-1", "edge")
        bundle = load_bundle(fleet.write_bundle(home, "edge-1", "s1")[0])
        models = root / "models"
        for pack_id in PACKS:
            (models / pack_id).mkdir(parents=True)
            for spec in get_pack(pack_id).files:
                (models / pack_id / spec.name).symlink_to(models_dir() / spec.name)
            sign_pack(home, models / pack_id, pack_id)
        threads = max(1, 2 // args.cameras)
        results = {}
        for pack_id in PACKS:
            pack = get_pack(pack_id)
            verify_ms, load_ms = [], []
            for _ in range(args.rounds):
                started = time.perf_counter()
                folder = verify_pack(bundle, pack, models)
                verified = time.perf_counter()
                engines = [FaceEngine(pack, folder, threads=threads) for _ in range(args.cameras)]
                loaded = time.perf_counter()
                verify_ms.append((verified - started) * 1000)
                load_ms.append((loaded - verified) * 1000)
                del engines
            results[pack_id] = {
                "verify_ms_median": round(statistics.median(verify_ms), 1),
                "load_ms_median": round(statistics.median(load_ms), 1),
                "switch_ms_median": round(statistics.median(v + lo for v, lo in zip(verify_ms, load_ms)), 1),
                "switch_ms_max": round(max(v + lo for v, lo in zip(verify_ms, load_ms)), 1),
            }
    print(json.dumps({"cameras": args.cameras, "rounds": args.rounds, "machine": platform.machine(),
                      "packs": results}))


if __name__ == "__main__":
    main()
