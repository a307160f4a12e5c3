"""``wifi``: probe capture on the edge box (mounted by the lead as ``instore edge wifi``).

``run`` reads one source (a pcap/pcapng replay, ``iface:NAME`` live in monitor mode, or a
sensor feed ``udp:PORT`` / ``http:PORT``), prints one JSON line per footfall minute and per
presence event and a summary last; logs go to stderr. ``calibrate`` turns an empty-store
capture into the store's RSSI threshold and equipment list.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)
log = logging.getLogger("edge.wifi")

SECRET_ENV = "INSTORE_WIFI_SECRET"


@app.callback()
def wifi() -> None:
    """Wi-Fi probe capture: footfall, presence of registered phones."""


def emit(**event: object) -> None:
    typer.echo(json.dumps(event, ensure_ascii=False, default=str))


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def brand_secret(path: Optional[Path]) -> bytes:
    """From the file if given, else from $INSTORE_WIFI_SECRET; never from the command line,
    where it would show in the process list."""
    from protocol.wifi import MIN_SECRET_BYTES

    if path is not None:
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise fail(f"cannot read brand secret file {path}: {exc.strerror}") from None
    else:
        secret = os.environ.get(SECRET_ENV, "").encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise fail(f"brand secret (--brand-secret-file or ${SECRET_ENV}) must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def keyed_macs(macs: list[str], secret: bytes) -> set[str]:
    from protocol.wifi import MacError, device_key

    try:
        return {device_key(mac, secret) for mac in macs}
    except MacError as exc:
        raise fail(f"--background-mac: {exc}") from None


SecretOption = typer.Option(None, "--brand-secret-file", help=f"file holding the brand's Wi-Fi secret (else ${SECRET_ENV})")


@app.command()
def run(
    source: str = typer.Option(..., help="capture.pcap[ng], iface:NAME (monitor mode), udp:PORT or http:PORT"),
    store: str = typer.Option(..., help="store id"),
    device: str = typer.Option(..., help="this box's device id"),
    brand: str = typer.Option("demo", envvar="INSTORE_BRAND", help="brand id"),
    broker: str = typer.Option("mqtt://127.0.0.1:1883", help="mqtt://host:port[?protocol=3.1.1]"),
    secret_file: Optional[Path] = SecretOption,
    speed: float = typer.Option(0.0, help="replay pace: 0 as fast as possible, 1 real time, 60 a minute per second"),
    calibration: Optional[Path] = typer.Option(None, help="JSON from `calibrate` (RSSI threshold, equipment)"),
    background_mac: list[str] = typer.Option([], "--background-mac", help="the store's own device (repeatable); keyed at once"),
    registered: Optional[Path] = typer.Option(None, help="file of device keys to send presence for (default: every stable device)"),
    db: Optional[Path] = typer.Option(None, help="SQLite file for learned equipment and closed sessions"),
    rssi_min: Optional[int] = typer.Option(None, help="override the in-store RSSI threshold (dBm)"),
    once: bool = typer.Option(False, "--once", help="stop at the end of a capture (live sources: ignored)"),
) -> None:
    """Footfall per minute and presence of stable devices, published over MQTT."""
    import threading
    import time

    from protocol import topics, transport

    from edge.wifi.background import Background
    from edge.wifi.calibration import Calibration
    from edge.wifi.engine import Placement, WifiEngine
    from edge.wifi.frames import ProbeParser
    from edge.wifi.keys import DeviceKeyer
    from edge.wifi.rules import PresenceRules
    from edge.wifi.sensorfeed import FeedListener, FeedParser
    from edge.wifi.sink import MqttSink, TeeSink
    from edge.wifi.sources import WifiSourceError, live, replay
    from edge.wifi.state import WifiState

    secret = brand_secret(secret_file)
    try:
        for kind, value in (("brand", brand), ("store", store), ("device", device)):
            topics.check_id(kind, value)
        url = transport.BrokerUrl.parse(broker)
        cal = Calibration.load(calibration) if calibration else None
        keys = {line.strip() for line in registered.read_text().splitlines() if line.strip()} if registered else None
    except (topics.TopicError, transport.BrokerUrlError, OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    rules = PresenceRules()
    threshold = rssi_min if rssi_min is not None else cal.rssi_min_dbm if cal else rules.rssi_min_dbm
    rules = rules.model_copy(update={"rssi_min_dbm": threshold})
    state = WifiState(db) if db else None
    known = keyed_macs(background_mac, secret) | set(cal.background_keys if cal else ()) | (state.background_keys() if state else set())
    keyer = DeviceKeyer(secret)
    stop = threading.Event()
    kind, _, arg = source.partition(":")
    try:
        if kind in ("udp", "http") and arg.isdigit():
            parser = FeedParser(keyer)
            listener = FeedListener(kind, int(arg), parser)
            listener.start()
            observations = listener.observations(stop)
        elif kind == "iface" and arg:
            parser = ProbeParser(keyer)
            observations = live(arg, parser, stop)
        else:
            parser = ProbeParser(keyer)
            observations = replay(Path(source), parser, speed)
    except (WifiSourceError, OSError) as exc:
        raise fail(str(exc)) from None

    def show(topic: str, message) -> None:  # noqa: ANN001
        body = message.model_dump(mode="json", exclude={"v", "brand", "store", "device"})
        emit(event=body.pop("type").removeprefix("wifi_"), **body)

    mqtt_sink = MqttSink(url, f"edge-wifi-{brand}-{store}-{device}")
    try:
        mqtt_sink.start()
    except ConnectionError as exc:
        raise fail(str(exc)) from None
    engine = WifiEngine(Placement(brand, store, device), rules, TeeSink(mqtt_sink, show),
                        Background(rules.background_hours, known), registered=keys, state=state)
    log.info("wifi %s/%s/%s on %s, in-store from %d dBm, %d equipment keys", brand, store, device,
             kind if kind in ("udp", "http", "iface") else "capture", rules.rssi_min_dbm, len(known))
    try:
        for obs in observations:
            if obs is None:
                engine.advance(time.time())
            else:
                engine.feed(obs)
    except KeyboardInterrupt:
        log.info("interrupted")
    except WifiSourceError as exc:
        raise fail(str(exc)) from None
    finally:
        stop.set()
        engine.finish()
        unacked = mqtt_sink.flush()
        mqtt_sink.close()
        if kind in ("udp", "http") and arg.isdigit():
            listener.stop()
    emit(event="summary", **parser.stats.as_dict(), minutes=engine.minutes,
         presence_events=engine.presence_events, background_keys=len(engine.background.keys),
         rssi_min_dbm=rules.rssi_min_dbm, unacked=unacked)
    if unacked:
        raise typer.Exit(code=1)


@app.command()
def calibrate(
    source: Path = typer.Option(..., help="a capture of the empty store, ideally a whole day"),
    out: Path = typer.Option(..., help="where to write the calibration JSON"),
    secret_file: Optional[Path] = SecretOption,
    background_mac: list[str] = typer.Option([], "--background-mac", help="equipment known in advance (repeatable)"),
) -> None:
    """Learn the store's equipment and its in-store RSSI threshold from an empty-store capture."""
    from edge.wifi.calibration import calibrate as learn
    from edge.wifi.frames import ProbeParser
    from edge.wifi.keys import DeviceKeyer
    from edge.wifi.rules import PresenceRules
    from edge.wifi.sources import WifiSourceError, replay

    secret = brand_secret(secret_file)
    parser = ProbeParser(DeviceKeyer(secret))
    try:
        result = learn(replay(source, parser), PresenceRules().background_hours // 2, keyed_macs(background_mac, secret))
    except WifiSourceError as exc:
        raise fail(str(exc)) from None
    result.save(out)
    emit(event="calibration", rssi_min_dbm=result.rssi_min_dbm, outside_max_dbm=result.outside_max_dbm,
         background_keys=len(result.background_keys), **parser.stats.as_dict())
