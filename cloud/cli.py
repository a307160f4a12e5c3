"""``instore cloud ...``: serve (API + ingest), import, generate, rebuild-oneid, refresh-tags, create-key, devices, health.

Heavy imports (FastAPI, uvicorn, onnxruntime) happen inside the command so that ``instore --help``
and the other wings' commands start fast.

The options are the fields of ``cloud.settings.Settings``: their help texts and defaults come from
there, an option not given leaves the field to ``INSTORE_*`` environment variables, the
``--config`` TOML file (else ``$INSTORE_CONFIG``) and the defaults, in that order. ``--db`` is a
SQLite file or a ``postgresql://`` URL.

Every expected failure (a cloud error, a malformed broker URL, a broker or database that does not
answer, missing model files, an unreadable file) ends in one place, ``_Commands.invoke``: one
readable line ``error: ...`` on stderr and exit code 2; no command catches errors itself.
"""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic_core import PydanticUndefined
from typer.core import TyperGroup

from cloud.errors import CloudError, Invalid
from cloud.settings import CONFIG_ENV, Settings
from protocol.facepack import PackError
from protocol.transport import BrokerUrlError

#: The exit code of every refused command (a usage error, as click's own).
EXIT_ERROR = 2
#: What a command may meet that is the operator's to fix, not a bug: one line, no traceback.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (CloudError, BrokerUrlError, PackError, ConnectionError, OSError)


class _Commands(TyperGroup):
    """The cloud's command group: the one place its commands' expected errors are reported."""

    def invoke(self, ctx: Any) -> Any:  # click's Context
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            _fail(_describe(exc))


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"cannot read {exc.filename}: {exc.strerror}"
    return str(exc)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(EXIT_ERROR)


app = typer.Typer(cls=_Commands, no_args_is_help=True)


def _setting(name: str, *flags: str) -> Any:
    """The option for the settings field ``name``: its description as help, its default shown,
    None when not given (so the environment, the config file or the default decide)."""
    field = Settings.model_fields[name]
    default = field.default
    shown = str(default) if default not in (None, (), PydanticUndefined) else False
    return typer.Option(*flags, help=field.description, show_default=shown)


Config = Annotated[Path | None, typer.Option(
    "--config", help=f"a TOML file of settings (cloud.settings.Settings fields); else ${CONFIG_ENV}", show_default=False)]
Db = Annotated[str | None, _setting("db", "--db")]


@app.command()
def serve(
    db: Db = None,
    broker: Annotated[str | None, _setting("broker_url", "--broker")] = None,
    port: Annotated[int | None, _setting("api_port", "--port")] = None,
    host: Annotated[str | None, _setting("api_host", "--host")] = None,
    pack: Annotated[str | None, _setting("pack_id", "--pack")] = None,
    share_group: Annotated[str | None, _setting("share_group", "--share-group")] = None,
    card_ttl: Annotated[int | None, _setting("card_ttl_s", "--card-ttl")] = None,
    wifi_secret_file: Annotated[Path | None, _setting("wifi_secret_file", "--wifi-secret-file")] = None,
    require_known_devices: Annotated[bool | None, _setting(
        "require_known_devices", "--require-known-devices/--allow-unknown-devices")] = None,
    rate_limit: Annotated[int | None, _setting("rate_limit_per_minute", "--rate-limit")] = None,
    cors_origin: Annotated[list[str] | None, _setting("cors_origins", "--cors-origin")] = None,
    client_id: Annotated[str | None, _setting("client_id", "--client-id")] = None,
    session_expiry: Annotated[int | None, _setting("session_expiry_s", "--session-expiry")] = None,
    dev_open_mode: Annotated[bool | None, _setting("dev_open_mode", "--dev-open-mode")] = None,
    config: Config = None,
) -> None:
    """Serve the HTTP API and, with --broker, turn arrivals into guide cards."""
    import uvicorn

    from cloud.api.app import create_app
    from cloud.runtime import Runtime

    settings = Settings.load(
        config, db=db, broker_url=broker, api_port=port, api_host=host, pack_id=pack, share_group=share_group,
        card_ttl_s=card_ttl, wifi_secret_file=wifi_secret_file, require_known_devices=require_known_devices,
        rate_limit_per_minute=rate_limit, cors_origins=tuple(cors_origin) if cors_origin else None,
        client_id=client_id, session_expiry_s=session_expiry, dev_open_mode=dev_open_mode,
    )
    runtime = Runtime.open(settings)
    try:
        runtime.start()
        uvicorn.run(create_app(settings, runtime), host=settings.api_host, port=settings.api_port, log_config=None)
    finally:
        runtime.close()


def _open(db: str | None, config: Path | None):
    """The database of ``--db``, else of the settings (``INSTORE_DB``, the config file)."""
    from cloud.runtime import open_cdp

    return open_cdp(Settings.load(config, db=db).db, sample_catalogue=False)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="an export: CSV (UTF-8, UTF-8 with BOM or GBK), .xls, .xlsx; JSON for wechat")],
    channel: Annotated[str | None, typer.Option(
        "--channel", help="an order or member export: tmall | jd | wechat | pos | youzan | douyin | members")] = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="master data: products | stores | staff | shifts | targets | stock | movements | batches")] = None,
    items: Annotated[Path | None, typer.Option(
        "--items", help="the file joined to it: 宝贝报表 for a Taobao 订单报表, order headers for POS lines")] = None,
    store: Annotated[str | None, typer.Option("--store", help="the store of a POS export that names none")] = None,
    db: Db = None,
    config: Config = None,
) -> None:
    """Import a channel export (--channel) or a master-data file (--kind): bad rows are quarantined with a
    reason, then a data-quality report (stderr) and the report as JSON (stdout)."""
    from rich.console import Console
    from rich.table import Table

    from cloud.cdp.imports.canonical import CHANNELS
    from cloud.masterdata.importer import KINDS

    if (channel is None) == (kind is None):
        raise Invalid("give --channel for an order or member export, or --kind for master data (one of them)")
    if channel is not None and channel not in CHANNELS:
        raise Invalid(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    if kind is not None and kind not in KINDS:
        raise Invalid(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    data = file.read_bytes()  # an OSError is reported by _Commands: "cannot read <file>: <why>"
    companion = items.read_bytes() if items is not None else None
    database = _open(db, config)
    report: Any
    measures: tuple[str, ...]
    try:
        if kind is not None:
            from cloud.masterdata.importer import import_master

            report = import_master(database, kind, data, source=file.name, actor="cli")
            measures = ("rows", "written", "created", "updated")
        else:
            from cloud.cdp.imports.importer import import_file as import_export

            assert channel is not None  # exactly one of --channel and --kind, checked above
            report = import_export(database, channel, data, companion=companion, store=store, source=file.name,
                                   progress=True, actor="cli")
            measures = ("rows", "orders", "refunds", "lines", "buyers_new", "buyers_known", "persons_changed")
    finally:
        database.close()
    table = Table(title=f"data quality: {file.name} ({channel or kind}), import {report.import_id}")
    table.add_column("measure")
    table.add_column("count", justify="right")
    for name in measures:
        table.add_row(name, str(getattr(report, name)))
    for reason, n in sorted(report.quarantined.items()):
        table.add_row(f"quarantined: {reason}", str(n))
    for reason, n in sorted(getattr(report, "blocked_identifiers", {}).items()):
        table.add_row(f"identifier blocked: {reason}", str(n))
    flags = {k: v for k, v in report.file.items() if isinstance(v, int) and v} | getattr(report, "flagged", {})
    for name, n in sorted(flags.items()):
        table.add_row(f"flagged: {name}", str(n))
    for column in report.file.get("unknown_columns", []):
        table.add_row(f"unknown column: {column}", "")
    for column in report.file.get("missing_columns", []):
        table.add_row(f"missing column: {column}", "")
    Console(stderr=True).print(table)
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))


@app.command("rebuild-oneid")
def rebuild_oneid(db: Db = None, config: Config = None) -> None:
    """Replay: re-resolve every person under the current rules and blocklist, then refresh tags."""
    from cloud.cdp import oneid, tags

    database = _open(db, config)
    try:
        result = oneid.rebuild(database, actor="cli")
        persons = tags.refresh(database, sorted(result.changed_persons))
    finally:
        database.close()
    typer.echo(json.dumps({"records": result.records, "links": result.links, "rejected": result.rejected,
                           "changed_persons": len(result.changed_persons), "tags_refreshed": persons,
                           "seconds": round(result.seconds, 3)}))


@app.command("refresh-tags")
def refresh_tags(db: Db = None, config: Config = None) -> None:
    """The nightly batch: every person's stats, RFM cut points, lifecycle and rule tags."""
    import time

    from cloud.cdp import tags

    database = _open(db, config)
    started = time.perf_counter()
    try:
        persons = tags.refresh(database)
    finally:
        database.close()
    typer.echo(json.dumps({"persons": persons, "seconds": round(time.perf_counter() - started, 3)}))


@app.command("create-key")
def create_key(
    name: Annotated[str, typer.Option("--name")],
    role: Annotated[str, typer.Option("--role", help="hq_admin | hq_analyst | store_manager | device")],
    store: Annotated[str | None, typer.Option("--store", help="for store_manager and device keys")] = None,
    db: Db = None,
    config: Config = None,
) -> None:
    """Create an API key; prints it once (only its hash is stored)."""
    from cloud.api import auth

    database = _open(db, config)
    try:
        made = auth.create_key(database, name=name, role=role, store=store)  # type: ignore[arg-type]
    finally:
        database.close()
    typer.echo(json.dumps({"id": made.id, "key": made.key}))


@app.command()
def generate(
    db: Db = None,
    config: Config = None,
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
        "yesterday, kinds in turn: guide screen idle, door camera down, shelves empty, staff absent, conversion "
        "collapse, POS down (cloud/synthetic/incidents.py)")] = 0,
    out: Annotated[Path | None, typer.Option(
        "--out", help="leave the brand's files here (stores, catalogue, staff, CRM members, each channel's export, "
        "stock, targets, the till's orders) to look at; default: a temporary folder")] = None,
) -> None:
    """A synthetic brand handed over as a brand would: master data, the CRM member list and each channel's
    orders as files in their real layouts, imported through the importers (OneID, profiles and tags resolved
    as they land); the last --floor-days of shop floor with the till's orders through the order stream,
    rolled up into the store health metrics and scanned for anomalies (with --incidents, planted ones)."""
    from cloud.synthetic.brand import generate as make

    if incidents > stores or (incidents and floor_days < 2):
        raise Invalid("--incidents needs as many --stores and --floor-days >= 2 (they are planted yesterday)")
    database = _open(db, config)
    try:
        summary: dict[str, object] = dict(make(database, persons=members, stores=stores, seed=seed, progress=True,
                                               floor_days=floor_days, brand=brand, store_ids=store_id, out=out))
        if incidents:
            summary["incidents"] = _plant(database, incidents, store_id)
        if floor_days:
            summary["rollup"] = _rollup_days(database, floor_days, None, None)
            summary["alerts"] = _scan_alerts(database, min(floor_days, 7))
    finally:
        database.close()
    typer.echo(json.dumps(summary))


def _plant(database, count: int, named: list[str]) -> list[dict]:
    from datetime import timedelta

    from cloud import clock
    from cloud.synthetic.incidents import as_json, plant_incidents

    stores = [r[0] for r in database.rows("SELECT id FROM stores ORDER BY id")]
    stores = [s for s in stores if s not in named] + [s for s in stores if s in named]
    yesterday = clock.now_local(clock.DEFAULT_TZ).date() - timedelta(days=1)
    return as_json(plant_incidents(database, stores[:count], yesterday))


def _rollup_days(database, days: int, first: str | None, last: str | None) -> dict:
    """Roll up [first, last] (default: the ``days`` local days up to today), then mark everything
    received so far as done, so the periodic job carries on from here."""
    from datetime import date, timedelta

    from cloud import clock
    from cloud.health import rollup

    try:
        end = date.fromisoformat(last) if last else clock.now_local(clock.DEFAULT_TZ).date()
        start = date.fromisoformat(first) if first else end - timedelta(days=days - 1)
    except ValueError as exc:
        raise Invalid(f"--from/--to must be YYYY-MM-DD: {exc}") from None
    if start > end:
        raise Invalid("--from is after --to")
    result = rollup.rollup_days(database, start, end)
    rollup.set_mark(database)
    return {"from": start.isoformat(), "to": end.isoformat(), **result.as_dict()}


health_app = typer.Typer(no_args_is_help=True, help="the store health metrics and scores")
app.add_typer(health_app, name="health")


@health_app.command("rollup")
def health_rollup(
    db: Db = None,
    config: Config = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="local days up to --to")] = 56,
    first: Annotated[str | None, typer.Option("--from", help="first local day YYYY-MM-DD")] = None,
    last: Annotated[str | None, typer.Option("--to", help="last local day YYYY-MM-DD (default today)")] = None,
) -> None:
    """Backfill (or redo) store_metrics and store_scores for a range of days; idempotent."""
    database = _open(db, config)
    try:
        typer.echo(json.dumps(_rollup_days(database, days, first, last)))
    finally:
        database.close()


@health_app.command("scan")
def health_scan(
    db: Db = None,
    config: Config = None,
    days: Annotated[int, typer.Option(
        "--days", min=1, max=366, help="how far back a store never scanned before is scanned")] = 1,
) -> None:
    """Scan store_metrics for anomalies now, as the cloud does after every rollup; prints the count.
    Nothing is sent here: a running cloud publishes the new alerts on MQTT at its next scan."""
    database = _open(db, config)
    try:
        typer.echo(json.dumps(_scan_alerts(database, days)))
    finally:
        database.close()


def _scan_alerts(database, days: int) -> dict:
    from datetime import datetime, timedelta

    from cloud.health.anomaly import ScanConfig, scan

    raised = scan(database, None, datetime.now(UTC), ScanConfig(first_lookback=timedelta(days=days)))
    return {"raised": len(raised), "critical": sum(a.severity == "critical" for a in raised)}


devices_app = typer.Typer(no_args_is_help=True, help="the device registry (from `instore provision`)")
app.add_typer(devices_app, name="devices")


@devices_app.command("import")
def import_devices(
    file: Annotated[Path, typer.Argument(help="provisioning's registry.json")],
    db: Db = None,
    config: Config = None,
) -> None:
    """Replace the brand's device registry; from now on events of unknown or revoked devices are dropped."""
    from cloud.fleet import devices

    text = file.read_bytes()
    database = _open(db, config)
    try:
        made = devices.import_registry(database, text)
    finally:
        database.close()
    typer.echo(json.dumps({"brand": made.brand, "devices": made.devices, "revoked": made.revoked}))


@devices_app.command("list")
def list_devices(
    store: Annotated[str | None, typer.Option("--store")] = None, db: Db = None, config: Config = None,
) -> None:
    """Registered and observed devices, one JSON line each."""
    from cloud.fleet import devices

    database = _open(db, config)
    try:
        for row in devices.listing(database, store):
            typer.echo(json.dumps(row))
    finally:
        database.close()

