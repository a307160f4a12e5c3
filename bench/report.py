"""Run every benchmark and write docs/PERFORMANCE.md: the machine, the date, one table of figures
with their targets, met or missed.

    uv run python -m bench.report                 # full sizes (long: the 10-minute soak, 100k members, ...)
    uv run python -m bench.report --quick         # reduced sizes, a few minutes
    uv run python -m bench.report --only soak,mqtt_ratio --out /tmp/perf.md
    uv run python -m bench.report --curves        # cost curves: PNGs in docs/curves/, their section in --out

Each benchmark is its own process (``bench/<name>.py``, last stdout line JSON); its stderr goes
to a log in a temp folder. A benchmark this file does not know yet (another issue's) is run with
no arguments (``--quick`` if its help offers it) and its numeric figures are listed without a
target. A benchmark that fails or times out is a row saying so; the others still run.

``--curves`` runs instead the CDP, health and ingest benchmarks at growing sizes
(``bench/curves.py``), draws each figure against size into ``docs/curves/<benchmark>.png`` with its
fitted growth exponent, and replaces only the cost-curves section of ``--out`` (the rest of the
file is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import curves
from bench.machine import yardstick
from bench.targets import BENCHES, Bench, Figure

REPO = Path(__file__).resolve().parents[1]
#: bench/*.py that are helpers of the benchmarks, not benchmarks
HELPERS = {"replay", "report", "targets", "curves", "machine", "__init__"}
CURVES_BEGIN, CURVES_END = "<!-- cost curves: bench/report.py --curves -->", "<!-- end of cost curves -->"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 2**30
    speed = yardstick()  # the same machine runs at half speed some days: the figures need the day's
    return (f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, yardstick {speed['yardstick_s']} s (bench/machine.py)")


def discover() -> list[Bench]:
    """The known benchmarks that exist, then any other bench/*.py (another issue's, not yet described)."""
    present = {p.stem for p in (REPO / "bench").glob("*.py")} - HELPERS
    known = [b for b in BENCHES if b.script in present]
    others = sorted(present - {b.script for b in BENCHES})
    return known + [Bench(name, name, (), (), ()) for name in others]


def run_one(bench: Bench, quick: bool, logdir: Path, timeout: float) -> tuple[dict | None, str, float]:
    """(JSON result or None, error text, seconds)."""
    args = list(bench.quick if quick else bench.full)
    if not bench.figures and quick and not bench.quick:
        help_text = subprocess.run([sys.executable, f"bench/{bench.script}.py", "--help"], cwd=REPO,
                                   capture_output=True, text=True, timeout=120).stdout
        args = ["--quick"] if "--quick" in help_text else []
    log = logdir / f"{bench.name}.log"
    started = time.monotonic()
    try:
        with log.open("w") as err:
            proc = subprocess.run([sys.executable, f"bench/{bench.script}.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=err, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s", time.monotonic() - started
    seconds = time.monotonic() - started
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        return None, f"exit {proc.returncode}, no JSON last line (log: {log})", seconds
    return result, "" if proc.returncode == 0 else f"exit {proc.returncode}", seconds


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)


def rows(bench: Bench, result: dict | None, error: str, quick: bool) -> list[str]:
    command = f"`bench/{bench.script}.py {' '.join(bench.quick if quick else bench.full)}`".replace(" `", "`")
    if result is None:
        return [f"| {bench.name} | {command} | failed: {error} | | missed |"]
    figures = bench.figures or tuple(Figure(k, k) for k, v in result.items()
                                     if isinstance(v, (int, float)) and not isinstance(v, bool))
    out = []
    for figure in figures:
        value = figure.value(result)
        verdict = figure.verdict(result)
        out.append(f"| {bench.name} | {command} | {figure.label}: **{_cell(value)}**{figure.unit} | {figure.target or '-'} "
                   f"| {verdict} |")
        command = ""
    if error:
        out.append(f"| {bench.name} | | {error} | | missed |")
    return out


def command_line() -> str:
    """How this report was made, without the --notes paragraph (printed below it anyway)."""
    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg == "--notes":
            skip = not skip
            continue
        args.append(arg)
    return " ".join(["uv run python -m bench.report", *args])


def render(results: list[tuple[Bench, dict | None, str, float, bool]], quick: bool, notes: str, host: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        f"Written by `{command_line()}` on {now}.",
        "",
        f"Machine: {host}.",
        "",
    ]
    if notes:
        lines += [notes, ""]
    lines += ["| benchmark | command | figure | target | met |", "|---|---|---|---|---|"]
    for bench, result, error, _, reduced in results:
        lines += rows(bench, result, error, reduced)
    times = [f"{b.name} {s:.0f} s" if s else f"{b.name} (an earlier run's result)" for b, _, _, s, _ in results]
    lines += ["", "Run times: " + ", ".join(times) + ".", ""]
    for bench, result, _, _, _ in results:
        if result is not None and bench.details is not None:
            lines += bench.details(result)
    return "\n".join(lines) + "\n"


def _kept_curve(text: str, name: str) -> list[str]:
    """The lines of curve ``name``'s section in an earlier report (none if it has none)."""
    if CURVES_BEGIN not in text or f"### {name}:" not in text:
        return []
    block = text.split(CURVES_BEGIN, 1)[1].split(CURVES_END, 1)[0]
    return ("### " + block.split(f"### {name}:", 1)[1].split("\n### ", 1)[0].rstrip("\n")).replace(
        "### ", f"### {name}:", 1).splitlines() + [""]


def cost_curves(out: Path, logdir: Path, timeout: float, only: set[str], host: str) -> dict:
    """Run every curve's sizes, draw the PNGs next to ``out`` (curves/), rewrite its curves section."""
    folder = out.parent / "curves"
    folder.mkdir(exist_ok=True)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [CURVES_BEGIN, "## Cost curves (issue 19)", "",
               f"Written by `{command_line()}` on {now}; machine: {host}. Each figure against the size it "
               "ran at, log-log, with the growth exponent k of figure ~ size^k (least squares; 1 is linear, "
               "0 flat; a cost with k > 1 grows faster than the data). Small sizes: the machine is shared, "
               "so these are the curves' shapes at the low end, not the figures at a brand's full size.", ""]
    exponents: dict[str, dict[str, float | None]] = {}
    text = out.read_text() if out.exists() else ""
    for curve in curves.CURVES:
        if only and curve.name not in only:
            section += _kept_curve(text, curve.name)  # a curve not re-run keeps its last section
            continue
        results, loads, when = [], [], datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        for size in curve.sizes:
            args = curve.args(size)
            print(f"running {curve.script} {' '.join(args)} ...", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
            result, error, seconds = run_one(Bench(curve.name, curve.script, args, args, ()), False, logdir, timeout)
            print(f"  {'ok' if result else error} in {seconds:.0f} s", file=sys.stderr, flush=True)
            results.append(result)
        sizes = list(curve.sizes)
        exponents[curve.name] = curves.draw(curve, sizes, results, folder / f"{curve.name}.png")
        section += curves.markdown(curve, sizes, results, exponents[curve.name], f"curves/{curve.name}.png", loads, when)
    section.append(CURVES_END)
    if CURVES_BEGIN in text and CURVES_END in text:
        head, rest = text.split(CURVES_BEGIN, 1)
        text = head + "\n".join(section) + rest.split(CURVES_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
    out.write_text(text)
    return {"written": str(out), "curves": exponents, "logs": str(logdir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--full", default="", help="with --quick: these (comma-separated) still run at full size")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    parser.add_argument("--notes", default="", help="a paragraph for the top of the report (load, caveats)")
    parser.add_argument("--result", action="append", default=[], metavar="NAME=FILE",
                        help="take NAME's JSON from FILE (its last line) instead of running it again")
    parser.add_argument("--curves", action="store_true", help="cost curves instead (with --only: of these)")
    opts = parser.parse_args()
    host = machine()  # once, before any benchmark loads the machine: its yardstick is the day's speed
    if opts.curves:
        logdir = Path(tempfile.mkdtemp(prefix="bench-curves-"))
        print(json.dumps(cost_curves(opts.out, logdir, opts.timeout, set(filter(None, opts.only.split(","))), host)))
        return
    benches = discover()
    if opts.only:
        wanted = set(opts.only.split(","))
        unknown = wanted - {b.name for b in benches}
        if unknown:
            raise SystemExit(f"--only: no benchmark {', '.join(sorted(unknown))}; known: {', '.join(b.name for b in benches)}")
        benches = [b for b in benches if b.name in wanted]
    logdir = Path(tempfile.mkdtemp(prefix="bench-report-"))
    given = dict(item.split("=", 1) for item in opts.result)
    results = []
    for bench in benches:
        quick = opts.quick and bench.name not in opts.full.split(",")
        if bench.name in given:
            result, error, seconds = json.loads(Path(given[bench.name]).read_text().strip().splitlines()[-1]), "", 0.0
        else:
            print(f"running {bench.name} ...", file=sys.stderr, flush=True)
            result, error, seconds = run_one(bench, quick, logdir, opts.timeout)
            print(f"  {bench.name}: {'ok' if result else error} in {seconds:.0f} s", file=sys.stderr, flush=True)
        results.append((bench, result, error, seconds, quick))
        opts.out.write_text(render(results, opts.quick, opts.notes, host))  # after each one: a long run keeps what it has
    verdicts = [Figure.verdict(f, r) for b, r, _, _, _ in results if r for f in b.figures]
    print(json.dumps({"written": str(opts.out), "benchmarks": len(results),
                      "failed": [b.name for b, r, _, _, _ in results if r is None],
                      "met": verdicts.count("met"), "missed": verdicts.count("missed"), "logs": str(logdir)}))


if __name__ == "__main__":
    main()
