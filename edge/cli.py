"""``instore edge ...``: run an edge box from a config file, an install bundle, or flags for the
one-camera case; ``instore edge wifi`` runs a Wi-Fi source on its own."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Any

import typer

from edge.wifi.cli import app as wifi_app

app = typer.Typer(no_args_is_help=True)
app.add_typer(wifi_app, name="wifi", help="Wi-Fi probe capture on its own: run, calibrate.")
log = logging.getLogger("edge")


@app.callback()
def edge() -> None:
    """The in-store edge box: cameras to arrivals."""


def emit(**event: object) -> None:
    """One JSON line on stdout per arrival and one summary at the end; logs go to stderr."""
    typer.echo(json.dumps(event, ensure_ascii=False))


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _flag_config(data: dict[str, Any], flags: dict[str, Any], camera: str | None, source: str | None,
                 fps: float | None, revisit_window: float | None, wifi: dict[str, Any]) -> dict[str, Any]:
    """Flags override the file; ``--source`` replaces the file's cameras with one camera, ``--wifi``
    the file's Wi-Fi source (keeping the rest of its ``[wifi]`` table)."""
    data = {**data, **{k: v for k, v in flags.items() if v is not None}}
    if source is not None:
        data["cameras"] = [{"id": camera or "cam1", "source": source, "fps": fps}]
    if revisit_window is not None:
        data["visits"] = {**data.get("visits", {}), "revisit_window_s": revisit_window}
    wifi = {k: v for k, v in wifi.items() if v is not None}
    if wifi:
        data["wifi"] = {**data.get("wifi", {}), **wifi}
    return data


@app.command()
def run(
    config: Path | None = typer.Option(None, "--config", help="TOML or JSON box config (docs/EDGE.md)"),
    store: str | None = typer.Option(None, help="store id"),
    device: str | None = typer.Option(None, help="this box's device id"),
    source: str | None = typer.Option(None, help="image folder or file, video file, rtsp:// URL or USB index"),
    broker: str | None = typer.Option(None, help="mqtt://host:port[?protocol=3.1.1] (default mqtt://127.0.0.1:1883)"),
    brand: str | None = typer.Option(None, envvar="INSTORE_BRAND", help="brand id (default demo)"),
    camera: str | None = typer.Option(None, help="camera id for --source (default cam1)"),
    pack: str | None = typer.Option(None, help="model pack id (default: $INSTORE_MODEL_PACK or the default pack)"),
    fps: float | None = typer.Option(None, help="frame rate cap for --source"),
    state: Path | None = typer.Option(None, help="state file: outbox and recent visits (SQLite)"),
    revisit_window: float | None = typer.Option(None, help="seconds within which the same face is the same visit (default 600)"),
    telemetry_interval: float | None = typer.Option(None, help="seconds between telemetry reports (default 30)"),
    once: bool = typer.Option(False, "--once", help="one pass over files, folders and a Wi-Fi capture, then exit"),
    bundle: Path | None = typer.Option(None, help="install bundle (instore provision bundle): identity, TLS broker, signed model pack"),
    wifi: str | None = typer.Option(None, help="Wi-Fi probe source beside the cameras: capture.pcap, iface:NAME, udp:PORT or http:PORT"),
    wifi_secret_file: Path | None = typer.Option(None, help="file holding the brand's Wi-Fi secret (else $INSTORE_WIFI_SECRET)"),
    metrics_port: int | None = typer.Option(None, "--metrics-port", envvar="INSTORE_METRICS_PORT", min=0, max=65535,
                                               help="serve Prometheus /metrics (stage timings) on this port; default off"),
) -> None:
    """Recognise faces on the box's cameras and publish one arrival per visit (and, with a Wi-Fi
    source, presence and footfall)."""
    from edge.box import EdgeBox
    from edge.config import ConfigError, build, read_file
    from edge.install import with_bundle
    from edge.sources import Source, SourceError
    from edge.wifi.runner import WifiError
    from protocol.facepack import PackError

    flags = dict(store=store, device=device, broker=broker, brand=brand, pack=pack,
                 state=str(state) if state else None, telemetry_interval_s=telemetry_interval,
                 bundle=str(bundle) if bundle else None)
    wifi_flags = dict(source=wifi, secret_file=str(wifi_secret_file) if wifi_secret_file else None)
    try:
        origin = f"config {config}" if config else "flags"
        data = _flag_config(read_file(config) if config else {}, flags, camera, source, fps, revisit_window, wifi_flags)
        if "cameras" not in data:
            raise ConfigError(f"{origin}: cameras: give --source or a [[cameras]] table")
        data, loaded_bundle = with_bundle(data, origin)
        cfg = build(data, origin)
        for spec in cfg.cameras:
            Source(spec.source, spec.id)  # a missing file or empty folder fails here, not in a thread
        box = EdgeBox(cfg, once=once, bundle=loaded_bundle, on_arrival=lambda e: emit(
            event="arrival", event_id=e.arrival.event_id, origin=e.origin,
            camera=e.arrival.camera, track_id=e.arrival.track_id))
    except (ConfigError, SourceError, PackError, WifiError) as exc:
        raise fail(str(exc)) from None

    from protocol import metrics

    metrics.serve(metrics_port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: box.stop())
    log.info("edge %s/%s/%s, %d camera(s)%s, pack %s, state %s", cfg.brand, cfg.store, cfg.device,
             len(cfg.cameras), " and Wi-Fi" if box.wifi else "", box.pack.id, cfg.state_path)
    unacked = box.run()
    workers = box.all_workers
    stats = [w.pipeline.stats for w in workers]
    rejected: dict[str, int] = {}
    for s in stats:
        for reason, count in s.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
    emit(
        event="summary",
        frames=sum(s.frames for s in stats),
        faces=sum(s.faces for s in stats),
        tracks=sum(s.tracks for s in stats),
        arrivals=sum(s.arrivals for s in stats),
        same_visit=sum(s.same_visit for s in stats),
        rejected=rejected,
        unusable=[o for s in stats for o in s.unusable],
        skipped_files=[f for w in workers for f in w.skipped],
        unacked=unacked,
        outbox_dropped=box.outbox.dropped,
        wifi=box.wifi.summary() if box.wifi else None,
    )
    if unacked:
        raise typer.Exit(code=1)
