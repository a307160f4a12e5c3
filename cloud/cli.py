"""``instore cloud ...``: serve (API + ingest), import, generate, rebuild-oneid, refresh-tags, create-key, devices, health.

Heavy imports (FastAPI, uvicorn, onnxruntime) happen inside the command so that ``instore --help``
and the other wings' commands start fast. Operator mistakes (a malformed broker URL, a broker or
database that does not answer, missing model files, an unknown channel) end with one readable line
and exit code 2. Every command takes ``--db``: a SQLite file or a ``postgresql://`` URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(no_args_is_help=True)

USAGE_ERROR = 2


@app.command()
def serve(
    db: Annotated[str, typer.Option("--db", help="SQLite file (created on first start) or postgresql:// URL")],
    broker: Annotated[
        str | None, typer.Option("--broker", help="mqtt://host:port[?protocol=3.1.1]; omit for API only")
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    pack: Annotated[str | None, typer.Option("--pack", help="face model pack for enrolment photos")] = None,
    share_group: Annotated[
        str | None, typer.Option("--share-group", help="MQTT shared-subscription group, for several cloud workers")
    ] = None,
    card_ttl: Annotated[
        int, typer.Option("--card-ttl", min=5, max=3600, help="seconds a guide card stays valid")
    ] = 120,
    wifi_secret_file: Annotated[
        Path | None, typer.Option("--wifi-secret-file", help="the brand's Wi-Fi secret (else $INSTORE_WIFI_SECRET)")
    ] = None,
    require_known_devices: Annotated[
        bool | None, typer.Option("--require-known-devices/--allow-unknown-devices",
                                  help="default: required once a device registry was imported")
    ] = None,
    rate_limit: Annotated[
        int, typer.Option("--rate-limit", min=0, help="API calls per minute per key or client address; 0: off")
    ] = 600,
    cors_origin: Annotated[
        list[str], typer.Option("--cors-origin", help="a web origin allowed to call the API (repeatable); none by default")
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="a stable, unique id for this ingest process: the broker keeps its "
                                 "session (subscriptions, events not yet processed) across restarts of either")
    ] = None,
    session_expiry: Annotated[
        int, typer.Option("--session-expiry", min=1, help="seconds the broker keeps a --client-id session while away")
    ] = 3600,
) -> None:
    """Serve the HTTP API and, with --broker, turn arrivals into guide cards."""
    import uvicorn
    from pydantic import ValidationError

    from cloud.api.app import create_app
    from cloud.runtime import Runtime
    from cloud.settings import Settings
    from protocol.facepack import PackError, get_pack
    from protocol.topics import TopicError
    from protocol.transport import BrokerUrlError

    try:
        settings = Settings(
            db=db, broker_url=broker, pack_id=get_pack(pack).id, share_group=share_group, card_ttl_s=card_ttl,
            wifi_secret_file=wifi_secret_file, require_known_devices=require_known_devices,
            rate_limit_per_minute=rate_limit, cors_origins=tuple(cors_origin),
            **({"client_id": client_id, "session_expiry_s": session_expiry} if client_id else {}),
        )
        runtime = Runtime.open(settings)
    except (BrokerUrlError, PackError, TopicError, ValidationError, ConnectionError) as exc:
        _fail(str(exc))
    try:
        runtime.start()
    except ConnectionError as exc:
        runtime.close()
        _fail(str(exc))
    try:
        uvicorn.run(create_app(settings, runtime), host=host, port=port, log_config=None)
    finally:
        runtime.close()


Db = Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL")]


def _open(db: str):  # noqa: ANN202
    from cloud.runtime import open_cdp

    try:
        return open_cdp(db, sample_catalogue=False)
    except (ConnectionError, OSError) as exc:
        _fail(str(exc))


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="a channel export: CSV (tmall, jd, pos, members) or JSON (wechat)")],
    channel: Annotated[str, typer.Option("--channel", help="tmall | jd | wechat | pos | members")],
    db: Db,
) -> None:
    """Import a channel export: bad rows are quarantined with a reason, then a data-quality report."""
    from rich.console import Console
    from rich.table import Table

    from cloud.cdp.imports.canonical import CHANNELS
    from cloud.cdp.imports.importer import import_text

    if channel not in CHANNELS:
        _fail(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
    database = _open(db)
    try:
        report = import_text(database, channel, text, source=file.name, progress=True, actor="cli")
    finally:
        database.close()
    table = Table(title=f"data quality: {file.name} ({channel}), import {report.import_id}")
    table.add_column("measure")
    table.add_column("count", justify="right")
    for name in ("rows", "orders", "refunds", "lines", "buyers_new", "buyers_known", "persons_changed"):
        table.add_row(name, str(getattr(report, name)))
    for reason, n in sorted(report.quarantined.items()):
        table.add_row(f"quarantined: {reason}", str(n))
    for reason, n in sorted(report.blocked_identifiers.items()):
        table.add_row(f"identifier blocked: {reason}", str(n))
    Console(stderr=True).print(table)
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))


@app.command("rebuild-oneid")
def rebuild_oneid(db: Db) -> None:
    """Replay: re-resolve every person under the current rules and blocklist, then refresh tags."""
    from cloud.cdp import oneid, tags

    database = _open(db)
    try:
        result = oneid.rebuild(database, actor="cli")
        persons = tags.refresh(database, sorted(result.changed_persons))
    finally:
        database.close()
    typer.echo(json.dumps({"records": result.records, "links": result.links, "rejected": result.rejected,
                           "changed_persons": len(result.changed_persons), "tags_refreshed": persons,
                           "seconds": round(result.seconds, 3)}))


@app.command("refresh-tags")
def refresh_tags(db: Db) -> None:
    """The nightly batch: every person's stats, RFM cut points, lifecycle and rule tags."""
    import time

    from cloud.cdp import tags

    database = _open(db)
    started = time.perf_counter()
    try:
        persons = tags.refresh(database)
    finally:
        database.close()
    typer.echo(json.dumps({"persons": persons, "seconds": round(time.perf_counter() - started, 3)}))


@app.command("create-key")
def create_key(
    db: Db,
    name: Annotated[str, typer.Option("--name")],
    role: Annotated[str, typer.Option("--role", help="hq_admin | hq_analyst | store_manager | device")],
    store: Annotated[str | None, typer.Option("--store", help="for store_manager and device keys")] = None,
) -> None:
    """Create an API key; prints it once (only its hash is stored)."""
    from cloud.api import auth

    database = _open(db)
    try:
        made = auth.create_key(database, name=name, role=role, store=store)  # type: ignore[arg-type]
    except ValueError as exc:
        _fail(str(exc))
    finally:
        database.close()
    typer.echo(json.dumps({"id": made.id, "key": made.key}))


@app.command()
def generate(
    db: Db,
    members: Annotated[int, typer.Option("--members", min=1, help="persons in the synthetic brand")] = 10_000,
    stores: Annotated[int, typer.Option("--stores", min=1, max=10_000)] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    floor_days: Annotated[int, typer.Option(
        "--floor-days", min=0, max=3660, help="days of shop floor (arrivals, assistants' feedback, footfall, stock) "
        "up to now, then rolled up for the health dashboards; 0: none")] = 56,
    brand: Annotated[str, typer.Option("--brand", help="the brand id on every row")] = "lumiere",
    store_id: Annotated[list[str], typer.Option(
        "--store-id", help="name the first stores (repeatable; the others are st-NNNN), e.g. a demo's own store")
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    incidents: Annotated[int, typer.Option(
        "--incidents", min=0, help="stores (those not named by --store-id first) with an incident planted for "
        "yesterday: guide screen idle, door camera down, shelves empty (cloud/synthetic/incidents.py)")] = 0,
) -> None:
    """A synthetic brand: stores, members with overlapping channel identities, a year of orders, visits,
    and the last --floor-days of shop floor, rolled up into the store health metrics and scanned for
    anomalies (with --incidents, planted ones among them)."""
    from cloud.synthetic.brand import generate as make

    if incidents > stores or (incidents and floor_days < 2):
        _fail("--incidents needs as many --stores and --floor-days >= 2 (they are planted yesterday)")
    database = _open(db)
    try:
        summary = make(database, persons=members, stores=stores, seed=seed, progress=True, floor_days=floor_days,
                       brand=brand, store_ids=store_id)
        if incidents:
            summary["incidents"] = _plant(database, incidents, store_id)
        if floor_days:
            summary["rollup"] = _rollup_days(database, floor_days, None, None)
            summary["alerts"] = _scan_alerts(database, min(floor_days, 7))
    finally:
        database.close()
    typer.echo(json.dumps(summary))


def _plant(database, count: int, named: list[str]) -> list[dict]:  # noqa: ANN001
    from datetime import timedelta

    from cloud.synthetic.incidents import as_json, plant_incidents
    from cloud import clock

    stores = [r[0] for r in database.rows("SELECT id FROM stores ORDER BY id")]
    stores = [s for s in stores if s not in named] + [s for s in stores if s in named]
    yesterday = clock.now_local(clock.DEFAULT_TZ).date() - timedelta(days=1)
    return as_json(plant_incidents(database, stores[:count], yesterday))


def _rollup_days(database, days: int, first: str | None, last: str | None) -> dict:  # noqa: ANN001
    """Roll up [first, last] (default: the ``days`` local days up to today), then mark everything
    received so far as done, so the periodic job carries on from here."""
    from datetime import date, timedelta

    from cloud import clock
    from cloud.health import rollup

    try:
        end = date.fromisoformat(last) if last else clock.now_local(clock.DEFAULT_TZ).date()
        start = date.fromisoformat(first) if first else end - timedelta(days=days - 1)
    except ValueError as exc:
        _fail(f"--from/--to must be YYYY-MM-DD: {exc}")
    if start > end:
        _fail("--from is after --to")
    result = rollup.rollup_days(database, start, end)
    rollup.set_mark(database)
    return {"from": start.isoformat(), "to": end.isoformat(), **result.as_dict()}


health_app = typer.Typer(no_args_is_help=True, help="the store health metrics and scores")
app.add_typer(health_app, name="health")


@health_app.command("rollup")
def health_rollup(
    db: Db,
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="local days up to --to")] = 56,
    first: Annotated[str | None, typer.Option("--from", help="first local day YYYY-MM-DD")] = None,
    last: Annotated[str | None, typer.Option("--to", help="last local day YYYY-MM-DD (default today)")] = None,
) -> None:
    """Backfill (or redo) store_metrics and store_scores for a range of days; idempotent."""
    database = _open(db)
    try:
        typer.echo(json.dumps(_rollup_days(database, days, first, last)))
    finally:
        database.close()


@health_app.command("scan")
def health_scan(
    db: Db,
    days: Annotated[int, typer.Option(
        "--days", min=1, max=366, help="how far back a store never scanned before is scanned")] = 1,
) -> None:
    """Scan store_metrics for anomalies now, as the cloud does after every rollup; prints the count.
    Nothing is sent here: a running cloud publishes the new alerts on MQTT at its next scan."""
    database = _open(db)
    try:
        typer.echo(json.dumps(_scan_alerts(database, days)))
    finally:
        database.close()


def _scan_alerts(database, days: int) -> dict:  # noqa: ANN001
    from datetime import datetime, timedelta, timezone

    from cloud.health.anomaly import ScanConfig, scan

    raised = scan(database, None, datetime.now(timezone.utc), ScanConfig(first_lookback=timedelta(days=days)))
    return {"raised": len(raised), "critical": sum(a.severity == "critical" for a in raised)}


devices_app = typer.Typer(no_args_is_help=True, help="the device registry (from `instore provision`)")
app.add_typer(devices_app, name="devices")


@devices_app.command("import")
def import_devices(
    file: Annotated[Path, typer.Argument(help="provisioning's registry.json")],
    db: Db,
) -> None:
    """Replace the brand's device registry; from now on events of unknown or revoked devices are dropped."""
    from cloud.fleet import devices

    try:
        text = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    database = _open(db)
    try:
        made = devices.import_registry(database, text)
    except devices.RegistryFileError as exc:
        _fail(str(exc))
    finally:
        database.close()
    typer.echo(json.dumps({"brand": made.brand, "devices": made.devices, "revoked": made.revoked}))


@devices_app.command("list")
def list_devices(db: Db, store: Annotated[str | None, typer.Option("--store")] = None) -> None:
    """Registered and observed devices, one JSON line each."""
    from cloud.fleet import devices

    database = _open(db)
    try:
        for row in devices.listing(database, store):
            typer.echo(json.dumps(row))
    finally:
        database.close()


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(USAGE_ERROR)
