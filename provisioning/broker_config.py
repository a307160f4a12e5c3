"""Generated Mosquitto configuration: two TLS listeners, certificate identities, per-device ACLs.

Why the dynamic-security plugin and not an ``acl_file`` (checked on Mosquitto 2.0.11):

* ``acl_file`` never refuses a SUBSCRIBE: 2.0.11 grants every subscription and only filters
  delivery, so a device subscribing to another store's cards gets a success SUBACK. The plugin
  checks subscriptions and answers SUBACK 0x87 (not authorized).
* Pattern ACLs (``%u``, ``%c``) substitute the whole username into one topic level, but a device
  is named by three levels (brand, store, device) and what it may read depends on its role, so a
  static pattern cannot say "its own store's cards". Explicit per-device entries generated from the
  registry can, and a device missing from the registry gets nothing at all (deny by default).
* ``use_subject_as_username`` makes the username ``CN=device,OU=store,O=brand`` from the
  certificate, unique per store even where device ids repeat (every store has ``kiosk-main``).
  ``use_identity_as_username`` would give only the CN, which is not.
* Shared subscriptions are checked with their ``$share/group/`` prefix, so the cloud is granted
  exactly ``$share/cdp/instore/v1/+/+/+/evt/#``, not a plain wildcard over every store.

Client ids bound to identities. The plugin can pin a client id to a client (``clientid``), but
2.0.11 checks it only in its password callback, which Mosquitto never calls for a listener with
``use_subject_as_username`` (src/handle_connect.c: "Authentication assumed to be cleared"). So
the binding is Mosquitto's own ``use_username_as_clientid`` on the **device listener**: whatever
client id a device sends, the broker replaces it with the certificate subject, so a device can
only ever be (and kick, or wipe the session of) itself. The cloud needs several connections per
process with ids of its choosing and persistent sessions, so it connects to a second, **service
listener** that only accepts certificates of the brand's separate *services CA* (the cloud's
``cdp`` account and the provisioning ``admin``); a device certificate fails the TLS handshake
there. Client ids are one namespace across listeners, and a device's id is always a
``CN=...,OU=store,O=brand`` subject (never ``OU=*``), so no device can take the id of a cloud
session.

Live changes: the plugin takes commands on ``$CONTROL/dynamic-security/v1`` from the ``admin``
account (``provisioning.dynsec``), so adding or revoking a device needs no restart. A SIGHUP
reloads the CRL (and keeps the plugin's state); see docs/SECURITY.md.

Delivery: persistence is always on (``persistence_location``, ``autosave_interval``), so messages
queued for an offline persistent session (the cloud's ingest) survive a broker restart; the
queue per session is large (``max_queued_messages``), and ``max_packet_size`` caps every packet a
little above the protocol's 64 KiB payload limit, so a 100 MB publish is cut off at its header.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from protocol.codec import MAX_PAYLOAD_BYTES
from protocol.topics import ROOT
from protocol.transport import BrokerUrl
from provisioning.registry import DeviceRecord, Home, Registry, RegistryError

SHARE_GROUP = "cdp"
DYNSEC_NAME = "dynamic-security.json"
CONF_NAME = "mosquitto.conf"
#: The operator's listener options, kept beside the config so ``revoke`` and ``sync`` reuse them.
OPTIONS_NAME = "listener.json"
PID_NAME = "mosquitto.pid"
PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
#: The in-store broker's bridge to the cloud and the device id its certificate carries.
BRIDGE_DEVICE = "bridge"
#: The dynamic-security control topics (the admin account's only grants, with $SYS).
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
CONTROL_RESPONSE = f"{CONTROL_TOPIC}/response"
#: Largest MQTT packet the broker reads: the 64 KiB payload limit plus room for topic and properties.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 8 * 1024


class BrokerConfigError(RuntimeError):
    pass


@dataclass
class Grants:
    """What one client may do: publish to ``send``; subscribe to and receive ``read``.

    ``read`` pairs the filter the client subscribes with (maybe ``$share/...``) with the topic
    filter the messages it receives must match.
    """

    send: list[str] = field(default_factory=list)
    read: list[tuple[str, str]] = field(default_factory=list)

    def plain(self, *filters: str) -> None:
        self.read.extend((f, f) for f in filters)

    def shared(self, *filters: str) -> None:
        self.read.extend((f"$share/{SHARE_GROUP}/{f}", f) for f in filters)

    def acls(self) -> list[dict[str, object]]:
        acls = [_acl("publishClientSend", topic) for topic in self.send]
        for subscribe, receive in self.read:
            acls += [_acl("subscribePattern", subscribe), _acl("publishClientReceive", receive)]
        return acls


def _acl(kind: str, topic: str) -> dict[str, object]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def screen_of(device: str) -> str:
    """A guide screen's device id is ``kiosk-{screen}`` (kiosk.guide_screen.feed.device_id)."""
    if not device.startswith("kiosk-") or len(device) == len("kiosk-"):
        raise RegistryError(f"a guide screen's device id must be kiosk-<screen>, not {device!r}")
    return device.removeprefix("kiosk-")


def grants(brand: str, record: DeviceRecord, *, store_local: bool = False) -> Grants:
    """The topics a device of this role may use: its own device level, its own store only.

    ``store_local``: the grants on the store's own broker, the only one with ``local/`` topics
    (live face crops); the cloud broker never grants them, so crops cannot travel through it.
    """
    store = f"{ROOT}/{brand}/{record.store}"
    g = Grants()
    if record.role == "admin":
        # mosquitto_ctrl's admin: the plugin's control topic and the broker's own $SYS figures
        g.send = [CONTROL_TOPIC]
        g.plain(CONTROL_RESPONSE, "$SYS/#")
        return g
    if record.role == "cloud":
        every = f"{ROOT}/+/+"
        g.send = [f"{every}/guide/+/card", f"{every}/guide/+/task", f"{every}/guide/all/floor", f"{every}/+/cfg/desired",
                  f"{every}/+/cmd/+", f"{every}/esl/#", f"{every}/health/alert"]
        g.shared(f"{every}/+/evt/#", f"{every}/+/telemetry", f"{every}/+/cmd/+/ack", f"{every}/guide/+/feedback",
                 f"{every}/guide/+/staff")
        # Retained messages never reach shared subscriptions (MQTT 5, 4.8.2), so states are plain.
        g.plain(f"{every}/+/state", f"{every}/+/cfg/reported")
        return g
    if record.role == "bridge":
        g.send = [f"{store}/+/{level}" for level in ("evt/#", "state", "telemetry", "cfg/reported", "cmd/+/ack")]
        g.send += [f"{store}/guide/+/feedback", f"{store}/guide/+/staff"]
        g.plain(f"{store}/guide/+/card", f"{store}/guide/+/task", f"{store}/guide/all/floor", f"{store}/+/cfg/desired",
                f"{store}/+/cmd/+", f"{store}/esl/#")
        return g
    own = f"{store}/{record.device}"
    g.send = [f"{own}/state", f"{own}/telemetry", f"{own}/cfg/reported", f"{own}/cmd/+/ack"]
    g.plain(f"{own}/cfg/desired", f"{own}/cmd/+")
    if record.role == "edge":
        g.send.append(f"{own}/evt/#")
        if store_local:
            g.send.append(f"{store}/local/#")
    elif record.role == "esl_gateway":
        g.send.append(f"{own}/evt/#")
        g.plain(f"{store}/esl/#")
    elif record.role == "kiosk":
        g.send += [f"{store}/guide/{screen_of(record.device)}/{level}" for level in ("feedback", "staff")]
        g.send.append(f"{own}/evt/face")  # a joiner's live crop, only in answer to the cloud's enrol command
        g.plain(f"{store}/guide/+/card", f"{store}/guide/+/task", f"{store}/guide/all/floor")  # the floor: retained
        if store_local:
            g.plain(f"{store}/local/crop/+")  # live face crops beside member cards
    return g


def username(brand: str, record: DeviceRecord) -> str:
    """What ``use_subject_as_username`` makes of the certificate subject (RFC 2253 order)."""
    return f"CN={record.device},OU={record.store},O={brand}"


def rolename(record: DeviceRecord) -> str:
    return f"{record.role}:{record.store}:{record.device}"


def client_entry(brand: str, record: DeviceRecord) -> dict[str, object]:
    return {
        "username": username(brand, record),
        "textname": f"{record.role} {record.device} of store {record.store}, serial {record.serial}",
        "roles": [{"rolename": rolename(record)}],
    }


def role_entry(brand: str, record: DeviceRecord, *, store_local: bool) -> dict[str, object]:
    return {"rolename": rolename(record), "acls": grants(brand, record, store_local=store_local).acls()}


def dynsec_document(registry: Registry, records: list[DeviceRecord], *, store_local: bool = False) -> dict[str, object]:
    """The plugin's whole state: one role per device, every default access denied."""
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [client_entry(registry.brand, r) for r in records],
        "groups": [],
        "roles": [role_entry(registry.brand, r, store_local=store_local) for r in records],
    }


def find_plugin(explicit: str | None = None) -> str:
    for candidate in ((explicit,) if explicit else PLUGIN_CANDIDATES):
        if Path(candidate).is_file():
            return candidate
    raise BrokerConfigError(
        "Mosquitto's dynamic-security plugin was not found "
        f"({explicit or ', '.join(PLUGIN_CANDIDATES)}); give --plugin PATH (Mosquitto >= 2.0)"
    )


@dataclass(frozen=True)
class ListenerOptions:
    """The operator's choices for one broker; saved as ``listener.json`` beside its config.

    ``service_port``/``service_bind``: the listener for the cloud and the admin (services CA);
    ``None`` takes the port of the registry's service URL (cloud) or the store broker's port + 1.
    ``persistence_dir``: ``None`` is ``data/`` beside the config.
    """

    port: int = 8883
    bind: str = "0.0.0.0"
    service_port: int | None = None
    service_bind: str | None = None
    plugin: str | None = None
    run_as: str | None = None
    log_file: Path | None = None
    persistence_dir: Path | None = None
    autosave_s: int = 5
    max_queued: int = 200_000
    max_packet: int = MAX_PACKET_BYTES

    def to_json(self) -> str:
        return json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ListenerOptions:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        for key in ("log_file", "persistence_dir"):
            if data.get(key):
                data[key] = Path(data[key])
        return cls(**{k: v for k, v in data.items() if k in known})


def saved_options(out: Path) -> ListenerOptions | None:
    """The options the operator last generated this broker's config with, if any."""
    path = out / OPTIONS_NAME
    try:
        return ListenerOptions.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise BrokerConfigError(f"{path} is not valid: {exc}") from None


def _conf(home: Home, out: Path, options: ListenerOptions, server: str, service_port: int, extra: list[str]) -> str:
    persistence = options.persistence_dir or out / "data"
    persistence.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [
        "# Generated by `instore provision broker-config`: regenerate rather than edit;",
        f"# the options it was generated with are in {OPTIONS_NAME} and survive `revoke`.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"plugin {find_plugin(options.plugin)}",
        f"plugin_opt_config_file {out / DYNSEC_NAME}",
        f"pid_file {out / PID_NAME}",
        # Queued messages of persistent sessions (the cloud's ingest) survive a restart.
        "persistence true",
        f"persistence_location {persistence}/",
        f"autosave_interval {options.autosave_s}",
        f"max_queued_messages {options.max_queued}",
        # Read no packet bigger than a protocol message can be: a 100 MB publish is refused at its header.
        f"max_packet_size {options.max_packet}",
    ]
    if options.run_as:
        lines.append(f"user {options.run_as}")
    if options.log_file:
        lines += [f"log_dest file {options.log_file}", "log_type error", "log_type warning", "log_type notice",
                  "log_type information"]
    server_dir = home.server_dir(server)
    tls = [
        f"certfile {server_dir / 'server.crt'}",
        f"keyfile {server_dir / 'server.key'}",
        "require_certificate true",
        "use_subject_as_username true",
        "tls_version tlsv1.2",
    ]
    lines += [
        "",
        "# devices: brand CA; the client id is forced to the certificate subject",
        f"listener {options.port} {options.bind}",
        f"cafile {home.ca_cert}",
        f"crlfile {home.crl}",
        *tls,
        "use_username_as_clientid true",
        "",
        "# services (cloud ingest, admin): services CA only; client ids of their choosing",
        f"listener {service_port} {options.service_bind or options.bind}",
        f"cafile {home.services_ca_cert}",
        f"crlfile {home.services_crl}",
        *tls,
    ]
    return "\n".join(lines + extra) + "\n"


def _write(out: Path, conf: str, document: dict[str, object], options: ListenerOptions) -> Path:
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    (out / DYNSEC_NAME).write_text(json.dumps(document, indent=2))
    (out / CONF_NAME).write_text(conf)
    (out / OPTIONS_NAME).write_text(options.to_json())
    return out / CONF_NAME


def _options(out: Path, options: ListenerOptions | None) -> ListenerOptions:
    """The given options, else the ones saved with the last generation, else the defaults."""
    return options or saved_options(out) or ListenerOptions()


def cloud_records(registry: Registry) -> list[DeviceRecord]:
    """Who the cloud broker knows: every active device of every store, the cloud, the admin."""
    return registry.active()


def store_records(registry: Registry, store: str) -> list[DeviceRecord]:
    """Who a store's broker knows: the store's own devices (not its bridge) and the admin."""
    bridge = registry.find(BRIDGE_DEVICE, store)
    return [d for d in registry.active(store) if d.key != bridge.key] + [d for d in registry.active() if d.role == "admin"]


def write_cloud_broker(home: Home, registry: Registry, options: ListenerOptions | None = None) -> Path:
    """Config for the cloud broker: every active device of every store, the cloud account, the admin."""
    out = home.broker_dir()
    options = _options(out, options)
    service_port = options.service_port or BrokerUrl.parse(registry.service_url).port
    options = replace(options, service_port=service_port)
    conf = _conf(home, out, options, "broker", service_port, [])
    return _write(out, conf, dynsec_document(registry, cloud_records(registry)), options)


def bridge_topics(brand: str, store: str) -> list[str]:
    """Uplinks out, downlinks in; ``local/#`` (face crops) is never bridged."""
    base = f"{ROOT}/{brand}/{store}"
    out = [f"{base}/+/{level}" for level in ("evt/#", "state", "telemetry", "cfg/reported", "cmd/+/ack")]
    out += [f"{base}/guide/+/feedback", f"{base}/guide/+/staff"]
    inward = [f"{base}/guide/+/card", f"{base}/guide/+/task", f"{base}/guide/all/floor", f"{base}/+/cfg/desired",
              f"{base}/+/cmd/+", f"{base}/esl/#"]
    return [f"topic {t} out 1" for t in out] + [f"topic {t} in 1" for t in inward]


def write_store_broker(
    home: Home, registry: Registry, store: str, options: ListenerOptions | None = None
) -> Path:
    """Config for an in-store broker: the store's devices only (with ``local/`` crops), bridged to the cloud."""
    record = registry.store(store)
    if not record.local_broker_url:
        raise RegistryError(f"store {store!r} has no in-store broker (store create --local-broker URL)")
    out = home.broker_dir(store)
    options = _options(out, options)
    service_port = options.service_port or BrokerUrl.parse(record.local_broker_url).port + 1
    options = replace(options, service_port=service_port)
    cloud = BrokerUrl.parse(registry.broker_url)
    bridge_dir = home.bundle_dir(store, BRIDGE_DEVICE)
    extra = [
        "",
        f"connection cloud-{store}",
        f"address {cloud.host}:{cloud.port}",
        "bridge_protocol_version mqttv50",
        f"bridge_cafile {home.ca_cert}",
        f"bridge_certfile {bridge_dir / 'device.crt'}",
        f"bridge_keyfile {bridge_dir / 'device.key'}",
        f"remote_clientid {registry.brand}.{store}.{BRIDGE_DEVICE}",  # the cloud broker replaces it by the subject
        "cleansession true",
        "try_private true",
        "notifications false",
        *bridge_topics(registry.brand, store),
    ]
    conf = _conf(home, out, options, f"store-{store}", service_port, extra)
    return _write(out, conf, dynsec_document(registry, store_records(registry, store), store_local=True), options)


def regenerate(home: Home, registry: Registry) -> list[Path]:
    """Rewrite every broker config generated before, each with its own saved options (after a revoke)."""
    written = []
    if home.broker_dir().is_dir():
        written.append(write_cloud_broker(home, registry))
    for store, record in registry.stores.items():
        if record.local_broker_url and home.broker_dir(store).is_dir():
            written.append(write_store_broker(home, registry, store))
    return written
