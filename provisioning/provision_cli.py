"""``instore provision ...``: the brand CA, stores, devices, bundles, revocation, broker config.

A new store takes three commands (after the one-time ``ca``)::

    instore provision store create s001 --name "Shanghai IFC"
    instore provision device create --store s001 --device edge-1 --role edge
    instore provision device create --store s001 --device kiosk-main --role kiosk
    instore provision bundle --store s001

State lives in ``--home`` (default ``$INSTORE_PROVISION_HOME``). Heavy imports (cryptography)
happen inside the commands so ``instore --help`` stays fast. Every refusal exits 1 with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Certificates, device registry, install bundles, broker ACLs.")
store_app = typer.Typer(no_args_is_help=True, help="Stores of the brand.")
device_app = typer.Typer(no_args_is_help=True, help="Devices of a store: edge boxes, guide screens, ESL gateways.")
pack_app = typer.Typer(no_args_is_help=True, help="Sign and verify model packs with the brand key.")
app.add_typer(store_app, name="store")
app.add_typer(device_app, name="device")
app.add_typer(pack_app, name="pack")

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="provisioning home (default $INSTORE_PROVISION_HOME)")
]
StoreOpt = Annotated[str | None, typer.Option("--store", help="store id (needed when the device id repeats)")]


@contextmanager
def _refusals(*more: type[Exception]) -> Iterator[None]:
    """Turn every expected failure into one line on stderr and exit code 1."""
    from protocol.facepack import PackError
    from protocol.topics import TopicError
    from protocol.transport import BrokerUrlError
    from provisioning.broker_config import BrokerConfigError
    from provisioning.pki import PkiError
    from provisioning.registry import RegistryError

    expected: tuple[type[Exception], ...] = (
        RegistryError, PkiError, PackError, TopicError, BrokerUrlError, BrokerConfigError, OSError, *more)
    try:
        yield
    except expected as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _home(home: Path | None):
    from provisioning.registry import Home

    return Home(home)


@app.command("ca")
def ca(
    brand: Annotated[str, typer.Option("--brand", help="brand id, the first topic level after instore/v1")],
    broker_url: Annotated[str, typer.Option("--broker-url", help="mqtts://host:port devices reach the cloud broker at")],
    host: Annotated[
        list[str], typer.Option("--host", help="DNS name or IP of the broker and API (repeat); 127.0.0.1 and localhost for tests")
    ],
    service_url: Annotated[
        str | None, typer.Option("--service-url", help="mqtts://host:port of the broker's service listener "
                                    "(cloud ingest, admin); default: --broker-url's port + 1")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Create the brand CA, the services CA, the pack-signing key, broker/API server certificates,
    the cloud account and the admin account."""
    from provisioning.fleet import CLOUD_SERVICE, init

    with _refusals():
        where = _home(home)
        registry = init(where, brand, broker_url, host, service_url=service_url)
    typer.echo(f"brand {brand}: CA, services CA, signing key and server certificates in {where.root}")
    typer.echo(f"cloud service account {CLOUD_SERVICE} (connects to {registry.service_url}): "
               f"bundle with `instore provision bundle --device {CLOUD_SERVICE}`")


def _apply(where, store: str | None, *, reload: bool = False) -> None:
    """Regenerate the broker configs (keeping their options) and push the change to the running brokers."""
    from provisioning.broker_config import regenerate
    from provisioning.dynsec import admin_url, reload_crl, sync

    registry = where.load()
    regenerate(where, registry)
    targets = [None] + ([store] if store and registry.stores.get(store) and registry.stores[store].local_broker_url else [])
    for target in targets:
        name = "cloud broker" if target is None else f"broker of store {target}"
        result = sync(where, registry, admin_url(where, registry, target), store=target)
        typer.echo(f"{name}: created {len(result.created)}, deleted {len(result.deleted)}, "
                   f"modified {len(result.modified)} (live, no restart)")
        if reload:
            typer.echo(f"{name}: " + ("SIGHUP sent, CRL reloaded" if reload_crl(where, target)
                                      else "not on this machine: SIGHUP it to reload the CRL"))


@store_app.command("create")
def store_create(
    store: Annotated[str, typer.Argument(help="store id")],
    name: Annotated[str | None, typer.Option("--name", help="display name")] = None,
    local_broker: Annotated[
        str | None, typer.Option("--local-broker", help="mqtts://host:port of an in-store broker bridged to the cloud")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Register a store (and, with --local-broker, certificates for its broker and bridge)."""
    from provisioning.fleet import create_store

    with _refusals():
        record = create_store(_home(home), store, name, local_broker)
    typer.echo(f"store {record.id} ({record.name}) created" + (f", in-store broker {local_broker}" if local_broker else ""))


@device_app.command("create")
def device_create(
    store: Annotated[str, typer.Option("--store", help="store id")],
    device: Annotated[str, typer.Option("--device", help="device id; guide screens are kiosk-<screen>")],
    role: Annotated[str, typer.Option("--role", help="edge | kiosk | esl_gateway")],
    model_pack: Annotated[str | None, typer.Option("--model-pack", help="model pack id for an edge box")] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="certificate lifetime")] = 365,
    renew: Annotated[bool, typer.Option("--renew", help="reissue an existing device; the old certificate is revoked")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="add it to the running brokers now (dynamic security, no restart)")] = False,
    home: HomeOpt = None,
) -> None:
    """Issue a device's certificate and key (into its bundle folder) and register it."""
    from provisioning.dynsec import DynsecError
    from provisioning.fleet import create_device

    with _refusals():
        where = _home(home)
        record = create_device(where, store, device, role, model_pack=model_pack, days=days, renew=renew)
    typer.echo(f"{record.role} {record.device} of store {record.store}: serial {record.serial}, valid until {record.not_after:%Y-%m-%d}")
    if apply:
        with _refusals(DynsecError):
            _apply(where, store, reload=renew)


@device_app.command("list")
def device_list(
    store: StoreOpt = None,
    warn_days: Annotated[int, typer.Option("--warn-days", help="flag certificates expiring within this many days")] = 30,
    home: HomeOpt = None,
) -> None:
    """Every device with its state and the days left on its certificate."""
    import datetime as dt

    with _refusals():
        registry = _home(home).load()
    now = dt.datetime.now(dt.UTC)
    for d in registry.devices:
        if store and d.store != store:
            continue
        left = (d.not_after - now).total_seconds() / 86400
        flag = "  EXPIRED" if left < 0 else ("  RENEW SOON" if left < warn_days and d.state == "active" else "")
        typer.echo(f"{d.store:10} {d.device:20} {d.role:12} {d.state:8} {left:7.0f} days left{flag}")


@app.command("bundle")
def bundle(
    device: Annotated[str | None, typer.Option("--device", help="one device (default: every device of --store)")] = None,
    store: StoreOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write install bundles: a folder and a .tar.gz per device (key 0600, CA, CRL, typed config)."""
    from provisioning.fleet import write_bundle, write_store_bundles

    with _refusals():
        if device is not None:
            written = [write_bundle(_home(home), device, store)]
        elif store is not None:
            written = write_store_bundles(_home(home), store)
        else:
            raise typer.BadParameter("give --device, --store, or both")
    for folder, archive in written:
        typer.echo(f"{folder}  ({archive.name})")


@app.command("revoke")
def revoke(
    device: Annotated[str, typer.Option("--device", help="device id")],
    store: StoreOpt = None,
    reason: Annotated[str, typer.Option("--reason")] = "revoked",
    apply: Annotated[bool, typer.Option("--apply", help="remove it from the running brokers now and SIGHUP them (CRL)")] = False,
    home: HomeOpt = None,
) -> None:
    """Revoke a device: CRL, broker configs (with their saved options), key shredded from its bundle."""
    from provisioning.broker_config import regenerate
    from provisioning.dynsec import DynsecError
    from provisioning.fleet import revoke as revoke_device

    with _refusals():
        where = _home(home)
        record = revoke_device(where, device, store, reason)
        regenerate(where, where.load())
    typer.echo(f"revoked {record.device} of store {record.store} (serial {record.serial}); CRL at {where.crl}; "
               "its key is shredded from the bundle folder and archive")
    if apply:
        with _refusals(DynsecError):
            _apply(where, record.store, reload=True)
    else:
        typer.echo("apply live: `instore provision broker-sync` (no restart), then SIGHUP Mosquitto (CRL)")


@app.command("broker-sync")
def broker_sync(
    store: Annotated[str | None, typer.Option("--store", help="the in-store broker of this store instead")] = None,
    url: Annotated[str | None, typer.Option("--url", help="mqtts:// URL of the broker's service listener")] = None,
    reload: Annotated[bool, typer.Option("--reload/--no-reload", help="SIGHUP a broker on this machine (CRL)")] = True,
    home: HomeOpt = None,
) -> None:
    """Make a running broker's clients and ACLs match the registry, live (dynamic security, no restart)."""
    from provisioning.dynsec import DynsecError, admin_url, reload_crl, sync

    with _refusals(DynsecError):
        where = _home(home)
        registry = where.load()
        result = sync(where, registry, admin_url(where, registry, store, url), store=store)
    typer.echo(f"created {len(result.created)}, deleted {len(result.deleted)}, modified {len(result.modified)}")
    for kind in ("created", "deleted", "modified"):
        for name in getattr(result, kind):
            typer.echo(f"  {kind}: {name}")
    if reload:
        typer.echo("SIGHUP sent, CRL reloaded" if reload_crl(where, store) else "broker not on this machine: SIGHUP it")


@app.command("crl")
def crl(home: HomeOpt = None) -> None:
    """Reissue the CRL (valid 30 days): run at least monthly, then SIGHUP Mosquitto."""
    from provisioning.fleet import refresh_crl

    with _refusals():
        path = refresh_crl(_home(home))
    typer.echo(f"CRL reissued: {path}")


@app.command("broker-config")
def broker_config(
    store: Annotated[str | None, typer.Option("--store", help="write the in-store broker of this store instead")] = None,
    port: Annotated[int, typer.Option("--port", help="device listener")] = 8883,
    bind: Annotated[str, typer.Option("--bind", help="listen address")] = "0.0.0.0",
    service_port: Annotated[
        int | None, typer.Option("--service-port", help="service listener (cloud, admin); default from the registry")
    ] = None,
    service_bind: Annotated[str | None, typer.Option("--service-bind", help="default: --bind")] = None,
    plugin: Annotated[str | None, typer.Option("--plugin", help="path to mosquitto_dynamic_security.so")] = None,
    run_as: Annotated[
        str | None, typer.Option("--run-as", help="user Mosquitto drops to when started as root (must read the server key)")
    ] = None,
    persistence_dir: Annotated[
        Path | None, typer.Option("--persistence-dir", help="where Mosquitto keeps its database (default: data/ beside the config)")
    ] = None,
    autosave: Annotated[int, typer.Option("--autosave", min=1, help="seconds between saves of the broker database")] = 5,
    max_queued: Annotated[int, typer.Option("--max-queued", min=1000, help="messages queued per offline session")] = 200_000,
    log_file: Annotated[Path | None, typer.Option("--log-file")] = None,
    home: HomeOpt = None,
) -> None:
    """Generate mosquitto.conf and the dynamic-security ACLs from the registry (options kept for later runs)."""
    from provisioning.broker_config import ListenerOptions, write_cloud_broker, write_store_broker

    options = ListenerOptions(port=port, bind=bind, service_port=service_port, service_bind=service_bind, plugin=plugin,
                              run_as=run_as, persistence_dir=persistence_dir, autosave_s=autosave, max_queued=max_queued,
                              log_file=log_file)
    with _refusals():
        where = _home(home)
        registry = where.load()
        conf = write_store_broker(where, registry, store, options) if store else write_cloud_broker(where, registry, options)
    typer.echo(f"mosquitto -c {conf}")


@pack_app.command("sign")
def pack_sign(
    pack: Annotated[str, typer.Option("--pack", help="pack id")],
    folder: Annotated[Path, typer.Option("--folder", help="folder holding the pack's files", file_okay=False)],
    home: HomeOpt = None,
) -> None:
    """Write a signed manifest (sha256 per file, Ed25519 by the brand key) into the pack folder."""
    from provisioning.signing import sign_pack

    with _refusals():
        path = sign_pack(_home(home), folder, pack)
    typer.echo(f"signed {pack}: {path}")


@pack_app.command("verify")
def pack_verify(
    folder: Annotated[Path, typer.Option("--folder", help="folder holding the pack", file_okay=False)],
    key: Annotated[Path, typer.Option("--key", help="the brand's pack-signing public key (in every bundle)")],
) -> None:
    """Check a pack's signature and every file; exit 1 naming what is wrong."""
    from protocol.facepack.signing import load_public_key, verify_signed_pack

    with _refusals():
        files = verify_signed_pack(folder, load_public_key(key))
    typer.echo(f"{folder}: signature valid, {len(files)} files intact")


@app.command("database-config")
def database_config(
    memory: Annotated[
        str | None, typer.Option("--memory", help="RAM the PostgreSQL server may count on, e.g. 24GiB or 512MB "
                                 "(1024-based; default: this machine's)")
    ] = None,
    cores: Annotated[int | None, typer.Option("--cores", help="CPU cores it may use (default: this machine's)")] = None,
    storage: Annotated[str, typer.Option("--storage", help="what its data directory is on: ssd | hdd")] = "ssd",
    processes: Annotated[
        int, typer.Option("--processes", help="CDP processes (instore cloud serve) sharing the database; sizes max_connections")
    ] = 4,
    out: Annotated[Path | None, typer.Option("--out", help="write the fragment to this file (default: print it)")] = None,
) -> None:
    """The postgresql.conf settings the CDP recommends for a machine, each with its reason (an include-able fragment)."""
    from provisioning.database_config import DatabaseConfigError, fragment, machine, write

    with _refusals(DatabaseConfigError):
        spec = machine(memory, cores, storage, processes)
        if out is None:
            typer.echo(fragment(spec), nl=False)
            return
        path = write(spec, out)
    typer.echo(f"{path}: include it at the end of postgresql.conf (include '{path.resolve()}') and restart PostgreSQL")
