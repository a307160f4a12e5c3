"""Cost curves (issue 19): each benchmark figure against the size it runs at, fitted and drawn.

``bench/report.py --curves`` runs the CDP, health and ingest benchmarks at growing sizes (the
``CURVES`` below), and this module fits each figure's growth and draws it. The growth is the
exponent ``k`` of ``figure ~ size^k``, a least-squares line through log(size), log(figure): 1 is
linear, 0 flat, and a cost growing with k > 1 is a defect to explain or fix. The plots are
log-log PNGs drawn with OpenCV (the only drawing library the environment has; matplotlib is not a
dependency): one per benchmark, one coloured series per figure, with its exponent in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Series:
    label: str  # the legend's text (ASCII: OpenCV's fonts have no other glyphs)
    get: Callable[[dict], float | None]  # the figure out of one run's JSON, in the plot's unit


@dataclass(frozen=True)
class Curve:
    name: str  # the PNG is docs/curves/<name>.png
    script: str  # bench/<script>.py
    size_label: str  # what grows along x
    unit: str  # the y axis
    sizes: tuple[int, ...]
    args: Callable[[int], tuple[str, ...]]
    series: tuple[Series, ...]


def _ms(key: str) -> Callable[[dict], float | None]:
    """A figure in seconds, as ms (one axis for a benchmark's times)."""
    return lambda r: None if r.get(key) is None else r[key] * 1000


def _step_p95(rate: int) -> Callable[[dict], float | None]:
    """The card p95 at one rate step of an ingest run (None if the ramp stopped before it)."""
    return lambda r: next((s["p95_ms"] for s in r["runs"][0]["steps"] if s["rate"] == rate), None)


#: Small sizes: the machine is shared by eight sessions. A full-size run passes its own sizes.
CURVES = (
    Curve("cdp_scale", "cdp_scale", "persons in the brand", "ms", (2_000, 4_000, 8_000, 16_000),
          lambda n: ("--members", str(n), "--stores", "50"), (
              Series("OneID full rebuild", _ms("oneid_rebuild_s")),
              Series("segment count (2 conditions)", _ms("segment_count_s")),
              Series("segment count (5 conditions)", _ms("segment5_count_s")),
              Series("portrait", _ms("portrait_s")),
              Series("profile read p95", lambda r: r.get("profile_read_p95_ms")),
              Series("face top-1", lambda r: r.get("face_top1_ms")),
          )),
    Curve("health_api", "health_api", "stores (30 days, 250 persons a store)", "ms", (5, 10, 20, 40),
          lambda n: ("--stores", str(n), "--days", "30", "--persons", str(250 * n), "--repeats", "5"), (
              Series("rollup of every day", _ms("rollup_s")),
              Series("incremental rollup", _ms("rollup_incremental_s")),
              Series("slowest endpoint p95", lambda r: r.get("slowest_p95_ms")),
          )),
    Curve("ingest_capacity", "ingest_capacity", "enrolled members (SQLite, 1 ingest)", "ms", (250, 1_000, 4_000),
          lambda n: ("--engines", "sqlite", "--members", str(n), "--rates", "25,50,100", "--step-s", "4"), (
              Series("card p95 at 50 arrivals/s", _step_p95(50)),
              Series("card p95 at 100 arrivals/s", _step_p95(100)),
          )),
)


def growth(sizes: list[float], values: list[float | None]) -> float | None:
    """The exponent k of value ~ size^k (least squares in log-log), over the positive points."""
    points = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if v is not None and v > 0]
    if len(points) < 2:
        return None
    x, y = np.array(points).T
    return round(float(np.polyfit(x, y, 1)[0]), 2)


COLOURS = ((200, 80, 30), (40, 40, 200), (30, 150, 30), (160, 40, 160), (0, 140, 220), (90, 90, 90))  # BGR
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 1000, 620, 90, 330, 50, 70
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _decades(low: float, high: float) -> list[float]:
    """1-2-5 ticks covering [low, high]."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        ticks += [m * 10.0 ** exponent for m in (1, 2, 5) if low <= m * 10.0 ** exponent <= high]
    return ticks or [low, high]


def _tick(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def draw(curve: Curve, sizes: list[int], results: list[dict | None], path: Path) -> dict[str, float | None]:
    """The curve's PNG at ``path`` (log-log, one series per figure, the fit dashed); returns each
    series' growth exponent."""
    table = {s.label: [None if r is None else s.get(r) for r in results] for s in curve.series}
    positive = [v for values in table.values() for v in values if v is not None and v > 0]
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    exponents = {label: growth(sizes, values) for label, values in table.items()}
    cv2.putText(image, f"{curve.name}: figure against size (log-log)", (LEFT, 30), FONT, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    cv2.rectangle(image, (LEFT, TOP), (LEFT + plot_w, TOP + plot_h), (0, 0, 0), 1)
    if not positive:
        cv2.putText(image, "no figures (every run failed)", (LEFT + 20, TOP + 40), FONT, 0.6, (0, 0, 200), 1, cv2.LINE_AA)
        cv2.imwrite(str(path), image)
        return exponents
    x_lo, x_hi = math.log10(min(sizes)) - 0.05, math.log10(max(sizes)) + 0.05
    y_lo, y_hi = math.log10(min(positive)) - 0.15, math.log10(max(positive)) + 0.15

    def at(size: float, value: float) -> tuple[int, int]:
        x = LEFT + (math.log10(size) - x_lo) / (x_hi - x_lo) * plot_w
        y = TOP + plot_h - (math.log10(value) - y_lo) / (y_hi - y_lo) * plot_h
        return round(x), round(y)

    for size in sizes:
        x, _ = at(size, 10 ** y_lo)
        cv2.line(image, (x, TOP + plot_h), (x, TOP + plot_h + 6), (0, 0, 0), 1)
        cv2.putText(image, _tick(size), (x - 15, TOP + plot_h + 24), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for value in _decades(10 ** y_lo, 10 ** y_hi):
        _, y = at(sizes[0], value)
        cv2.line(image, (LEFT, y), (LEFT + plot_w, y), (225, 225, 225), 1)
        cv2.putText(image, _tick(value), (LEFT - 60, y + 5), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, curve.size_label, (LEFT, HEIGHT - 20), FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, curve.unit, (LEFT - 60, TOP - 12), FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for n, (label, values) in enumerate(table.items()):
        colour = COLOURS[n % len(COLOURS)]
        points = [at(s, v) for s, v in zip(sizes, values, strict=True) if v is not None and v > 0]
        for a, b in zip(points, points[1:], strict=False):
            cv2.line(image, a, b, colour, 2, cv2.LINE_AA)
        for point in points:
            cv2.circle(image, point, 5, colour, -1, cv2.LINE_AA)
        k = exponents[label]
        text = f"{label}: k={k:.2f}" if k is not None else f"{label}: no fit"
        y = TOP + 20 + n * 44
        cv2.line(image, (WIDTH - RIGHT + 15, y - 5), (WIDTH - RIGHT + 40, y - 5), colour, 3)
        words, line = text.split(), ""
        for word in words:  # wrap the legend at ~30 characters
            if len(line) + len(word) > 30 and line:
                cv2.putText(image, line, (WIDTH - RIGHT + 48, y), FONT, 0.45, colour, 1, cv2.LINE_AA)
                line, y = "", y + 18
            line = f"{line} {word}".strip()
        cv2.putText(image, line, (WIDTH - RIGHT + 48, y), FONT, 0.45, colour, 1, cv2.LINE_AA)
    cv2.imwrite(str(path), image)
    return exponents


def markdown(curve: Curve, sizes: list[int], results: list[dict | None], exponents: dict[str, float | None],
             png: str, loads: list[float], when: str) -> list[str]:
    """The curve's section: the plot, then the table of figures by size with each growth exponent."""
    lines = [f"### {curve.name}: {curve.size_label}", "",
             f"`bench/{curve.script}.py {' '.join(curve.args(sizes[0]))}` and so on, for sizes "
             f"{', '.join(f'{s:,}' for s in sizes)}, from {when} (load average {min(loads):.1f}-{max(loads):.1f} during the runs).",
             "", f"![{curve.name}]({png})", "",
             "| figure | " + " | ".join(f"{s:,}" for s in sizes) + " | growth k |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for series in curve.series:
        cells = []
        for result in results:
            value = None if result is None else series.get(result)
            cells.append("failed" if result is None else "-" if value is None else f"{value:.3g}")
        k = exponents[series.label]
        lines.append(f"| {series.label} ({curve.unit}) | " + " | ".join(cells) + f" | {'-' if k is None else k} |")
    return [*lines, ""]
