"""The README's first command: the whole-store demo, offscreen, with insightface's sample photos."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_headless_once_prints_its_result(tmp_path, models_dir, artifacts):
    screenshot = artifacts / "demo-guide-screen.png"
    result = subprocess.run(
        [sys.executable, "-m", "provisioning", "demo", "--headless", "--once", "--screenshot", str(screenshot),
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"arrivals", "matched", "visitors", "cards", "p95_door_to_screen_ms", "label_flashes"}
    assert summary["matched"] > 0 and summary["visitors"] > 0
    assert summary["arrivals"] == summary["matched"] + summary["visitors"]
    assert summary["cards"] >= summary["matched"]
    assert summary["p95_door_to_screen_ms"] is not None
    assert screenshot.stat().st_size > 10_000
    assert summary["label_flashes"] > 0  # recommended products' labels flashed through the ESL gateway
    gateway_log = (tmp_path / "esl.log").read_text()
    assert gateway_log.count("flashing label") == summary["label_flashes"]
