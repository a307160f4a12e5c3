"""``instore esl``: run a store's ESL gateway, or render one label to a PNG to check a layout."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from kiosk.cli import _broker, _identifier

#: How long ``run`` waits for the broker to acknowledge the subscription before it stops waiting
#: to announce ``ready`` (it keeps running and subscribes on every reconnect regardless).
READY_TIMEOUT_S = 10.0

app = typer.Typer(help="E-shelf labels: the in-store gateway to an OpenEPaperLink access point.",
                  no_args_is_help=True)


def _ap_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{value!r} must be the AP's web address, e.g. http://192.168.1.50")
    return value


def _labels(path: Path):
    from kiosk.label_gateway.gateway import LabelBook

    try:
        return LabelBook.load(path)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--labels'") from None


@app.command("run")
def run(
    store: Annotated[str, typer.Option("--store", help="store id", callback=_identifier("store"))],
    labels: Annotated[Path, typer.Option("--labels", help='JSON: {"labels": [{"label", "mac", "tag_type"}]}',
                                         exists=True, dir_okay=False)],
    ap: Annotated[str, typer.Option("--ap", help="OpenEPaperLink AP, http://HOST:PORT", callback=_ap_url)],
    broker: Annotated[str, typer.Option("--broker", help="mqtt://host:port", callback=_broker)] = "mqtt://127.0.0.1:1883",
    brand: Annotated[str, typer.Option("--brand", help="brand id", callback=_identifier("brand"))] = "demo",
    device: Annotated[str, typer.Option("--device", help="this gateway's device id", callback=_identifier("device"))] = "esl-gw",
) -> None:
    """Follow the store's label commands until SIGINT/SIGTERM; logs one line per drawn or flashed label.

    Standard output carries one JSON ``ready`` line once the command subscription is acknowledged
    (the demo waits for it), and nothing else; the log goes to stderr.
    """
    from kiosk.label_gateway.ap import AccessPoint
    from kiosk.label_gateway.gateway import EslGateway
    from kiosk.label_gateway.render import FontMissing, font_file
    from protocol.transport import BrokerUrl

    try:
        font_file()
    except FontMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    gateway = EslGateway(BrokerUrl.parse(broker), brand, store, AccessPoint(ap), _labels(labels), device=device)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        gateway.start()
    except ConnectionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if gateway.subscribed.wait(READY_TIMEOUT_S):
        print(json.dumps({"event": "ready", "brand": brand, "store": store, "device": device}), flush=True)
    stop.wait()
    gateway.stop()


@app.command("render")
def render_label(
    command: Annotated[Path, typer.Argument(help="a LabelCommand JSON file with a product", exists=True, dir_okay=False)],
    tag_type: Annotated[str, typer.Option("--tag-type", help="epd29_bwr, epd154_bw or epd42_bwr")] = "epd29_bwr",
    out: Annotated[Path, typer.Option("--out", help="PNG to write", dir_okay=False)] = Path("label.png"),
) -> None:
    """Draw a label command's product as the tag would show it."""
    from kiosk.label_gateway.render import RenderError, render
    from protocol.codec import DecodeError, decode
    from protocol.esl import TAG_TYPES, LabelCommand

    if tag_type not in TAG_TYPES:
        raise typer.BadParameter(f"unknown tag type {tag_type!r}; one of {', '.join(TAG_TYPES)}", param_hint="'--tag-type'")
    try:
        parsed = decode(command.read_bytes(), LabelCommand)
    except DecodeError as exc:
        raise typer.BadParameter(f"{command}: {exc}", param_hint="'COMMAND'") from None
    if parsed.product is None:
        raise typer.BadParameter(f"{command} has no product to draw (flash only)", param_hint="'COMMAND'")
    try:
        render(TAG_TYPES[tag_type], parsed.product).save(out)
    except RenderError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(str(out))
