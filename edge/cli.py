"""``instore edge ...``: run an edge box over one camera source."""

from __future__ import annotations

import json
import logging
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)
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


@app.command()
def run(
    store: str = typer.Option(..., help="store id"),
    device: str = typer.Option(..., help="this box's device id"),
    source: str = typer.Option(..., help="image folder or file, video file, rtsp:// URL or USB index"),
    broker: str = typer.Option("mqtt://127.0.0.1:1883", help="mqtt://host:port[?protocol=3.1.1]"),
    brand: str = typer.Option("demo", envvar="INSTORE_BRAND", help="brand id"),
    camera: str = typer.Option("cam1", help="camera id within the box"),
    pack: Optional[str] = typer.Option(None, help="model pack id (default: $INSTORE_MODEL_PACK or the default pack)"),
    fps: Optional[float] = typer.Option(None, help="frame rate cap for video and streams"),
    once: bool = typer.Option(False, "--once", help="one pass over a file or folder, then exit"),
) -> None:
    """Recognise faces on one camera and publish an arrival per usable face."""
    from protocol import topics, transport
    from protocol.facepack import PackError
    from protocol.facepack.engine import FaceEngine

    from edge.pipeline import FacePipeline, Placement
    from edge.publisher import Publisher
    from edge.sources import Source, SourceError

    try:
        for kind, value in (("brand", brand), ("store", store), ("device", device), ("camera", camera)):
            topics.check_id(kind, value)
        url = transport.BrokerUrl.parse(broker)
        src = Source(source, camera, fps)
        engine = FaceEngine.load(pack)
    except (topics.TopicError, transport.BrokerUrlError, SourceError, PackError) as exc:
        raise fail(str(exc)) from None

    pipeline = FacePipeline(engine, Placement(brand, store, device))
    publisher = Publisher(url, brand, store, device, engine.pack.id)
    try:
        publisher.start()
    except ConnectionError as exc:
        raise fail(str(exc)) from None
    log.info("edge %s/%s/%s on %s with pack %s", brand, store, device, source, engine.pack.id)
    unacked = 0
    try:
        while True:
            for frame in src.frames():
                for arrival in pipeline.process(frame):
                    publisher.send(arrival)
                    emit(event="arrival", event_id=arrival.event_id, origin=frame.origin, camera=camera, track_id=arrival.track_id)
            if once or not src.finite:
                break
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        unacked = publisher.flush()
        publisher.close()
    stats = pipeline.stats
    emit(
        event="summary",
        frames=stats.frames,
        faces=stats.faces,
        arrivals=stats.arrivals,
        rejected=dict(stats.rejected),
        skipped_files=src.skipped,
        unacked=unacked,
    )
    if unacked:
        raise typer.Exit(code=1)
