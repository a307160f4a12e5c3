"""``instore edge wifi``: probe capture on its own, without cameras (mounted by ``edge/cli.py``).

``run`` reads one source (a pcap/pcapng replay, ``iface:NAME`` live in monitor mode, or a
sensor feed ``udp:PORT`` / ``http:PORT``), prints one JSON line per footfall minute and per
presence event and a summary last; logs go to stderr. ``calibrate`` turns an empty-store
capture into the store's RSSI threshold and equipment list. An edge box with cameras takes the
same source in its ``[wifi]`` section or ``--wifi`` (``edge/wifi/runner.py`` serves both).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)
log = logging.getLogger("edge.wifi")

@app.callback()
def wifi() -> None:
    """Wi-Fi probe capture: footfall, presence of registered phones."""


def emit(**event: object) -> None:
    typer.echo(json.dumps(event, ensure_ascii=False, default=str))


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


SecretOption = typer.Option(None, "--brand-secret-file", help="file holding the brand's Wi-Fi secret (else $INSTORE_WIFI_SECRET)")


@app.command()
def run(
    source: str = typer.Option(..., help="capture.pcap[ng], iface:NAME (monitor mode), udp:PORT or http:PORT"),
    store: str = typer.Option(..., help="store id"),
    device: str = typer.Option(..., help="this box's device id"),
    brand: str = typer.Option("demo", envvar="INSTORE_BRAND", help="brand id"),
    broker: str = typer.Option("mqtt://127.0.0.1:1883", help="mqtt://host:port[?protocol=3.1.1]"),
    secret_file: Path | None = SecretOption,
    speed: float = typer.Option(0.0, help="replay pace: 0 as fast as possible, 1 real time, 60 a minute per second"),
    calibration: Path | None = typer.Option(None, help="JSON from `calibrate` (RSSI threshold, equipment)"),
    background_mac: list[str] = typer.Option([], "--background-mac", help="the store's own device (repeatable); keyed at once"),
    registered: Path | None = typer.Option(None, help="file of device keys to send presence for (default: every stable device)"),
    db: Path | None = typer.Option(None, help="SQLite file for learned equipment and closed sessions"),
    rssi_min: int | None = typer.Option(None, help="override the in-store RSSI threshold (dBm)"),
    once: bool = typer.Option(
        False, "--once", help="accepted for symmetry with `edge run`: a capture replay always ends, live sources never do"
    ),
) -> None:
    """Footfall per minute and presence of stable devices, published over MQTT."""
    from pydantic import ValidationError

    from edge.config import explain
    from edge.placement import Placement
    from edge.wifi.runner import WifiError, WifiRunner
    from edge.wifi.settings import WifiSettings
    from edge.wifi.sink import MqttSink, TeeSink
    from protocol import topics, transport

    try:
        settings = WifiSettings(source=source, secret_file=secret_file, speed=speed, calibration=calibration,
                                background_macs=background_mac, registered=registered, db=db, rssi_min_dbm=rssi_min)
        for kind, value in (("brand", brand), ("store", store), ("device", device)):
            topics.check_id(kind, value)
        url = transport.BrokerUrl.parse(broker)
    except ValidationError as exc:
        raise fail(explain(exc)) from None
    except (topics.TopicError, transport.BrokerUrlError) as exc:
        raise fail(str(exc)) from None

    def show(topic: str, message) -> None:
        body = message.model_dump(mode="json", exclude={"v", "brand", "store", "device"})
        emit(event=body.pop("type").removeprefix("wifi_"), **body)

    mqtt_sink = MqttSink(url, f"edge-wifi-{brand}-{store}-{device}")
    try:
        runner = WifiRunner(settings, Placement(brand, store, device), TeeSink(mqtt_sink, show))
        mqtt_sink.start()
    except (WifiError, ConnectionError) as exc:
        raise fail(str(exc)) from None
    try:
        runner.run()
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        unacked = mqtt_sink.flush()
        mqtt_sink.close()
    if runner.error:
        raise fail(runner.error)
    emit(event="summary", **runner.summary(), unacked=unacked)
    if unacked:
        raise typer.Exit(code=1)


@app.command()
def calibrate(
    source: Path = typer.Option(..., help="a capture of the empty store, ideally a whole day"),
    out: Path = typer.Option(..., help="where to write the calibration JSON"),
    secret_file: Path | None = SecretOption,
    background_mac: list[str] = typer.Option([], "--background-mac", help="equipment known in advance (repeatable)"),
) -> None:
    """Learn the store's equipment and its in-store RSSI threshold from an empty-store capture."""
    from edge.wifi.calibration import calibrate as learn
    from edge.wifi.frames import ProbeParser
    from edge.wifi.keys import DeviceKeyer
    from edge.wifi.rules import PresenceRules
    from edge.wifi.runner import WifiError, keyed_macs, load_secret
    from edge.wifi.sources import WifiSourceError, replay

    try:
        secret = load_secret(secret_file)
        parser = ProbeParser(DeviceKeyer(secret))
        result = learn(replay(source, parser), PresenceRules().background_hours // 2, keyed_macs(background_mac, secret))
    except (WifiError, WifiSourceError) as exc:
        raise fail(str(exc)) from None
    result.save(out)
    emit(event="calibration", rssi_min_dbm=result.rssi_min_dbm, outside_max_dbm=result.outside_max_dbm,
         background_keys=len(result.background_keys), **parser.stats.as_dict())
