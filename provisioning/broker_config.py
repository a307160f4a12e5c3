"""Generated Mosquitto configuration: TLS listener, certificate identities, per-device ACLs.

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

The plugin reads its JSON at start only (SIGHUP reloads the CRL but not the plugin's file), so
after adding or revoking a device the broker is restarted; see docs/SECURITY.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from protocol.topics import ROOT
from protocol.transport import BrokerUrl
from provisioning.registry import DeviceRecord, Home, Registry, RegistryError

SHARE_GROUP = "cdp"
DYNSEC_NAME = "dynamic-security.json"
CONF_NAME = "mosquitto.conf"
PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
#: The in-store broker's bridge to the cloud and the device id its certificate carries.
BRIDGE_DEVICE = "bridge"


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


def grants(brand: str, record: DeviceRecord) -> Grants:
    """The topics a device of this role may use: its own device level, its own store only."""
    store = f"{ROOT}/{brand}/{record.store}"
    g = Grants()
    if record.role == "cloud":
        every = f"{ROOT}/+/+"
        g.send = [f"{every}/guide/+/card", f"{every}/+/cfg/desired", f"{every}/+/cmd/+", f"{every}/esl/#"]
        g.shared(f"{every}/+/evt/#", f"{every}/+/telemetry", f"{every}/+/cmd/+/ack", f"{every}/guide/+/feedback")
        # Retained messages never reach shared subscriptions (MQTT 5, 4.8.2), so states are plain.
        g.plain(f"{every}/+/state", f"{every}/+/cfg/reported")
        return g
    if record.role == "bridge":
        g.send = [f"{store}/+/{level}" for level in ("evt/#", "state", "telemetry", "cfg/reported", "cmd/+/ack")]
        g.send.append(f"{store}/guide/+/feedback")
        g.plain(f"{store}/guide/+/card", f"{store}/+/cfg/desired", f"{store}/+/cmd/+", f"{store}/esl/#")
        return g
    own = f"{store}/{record.device}"
    g.send = [f"{own}/state", f"{own}/telemetry", f"{own}/cfg/reported", f"{own}/cmd/+/ack"]
    g.plain(f"{own}/cfg/desired", f"{own}/cmd/+")
    if record.role == "edge":
        g.send += [f"{own}/evt/#", f"{store}/local/#"]
    elif record.role == "esl_gateway":
        g.send.append(f"{own}/evt/#")
        g.plain(f"{store}/esl/#")
    elif record.role == "kiosk":
        g.send.append(f"{store}/guide/{screen_of(record.device)}/feedback")
        g.plain(f"{store}/guide/+/card", f"{store}/local/crop/+")  # live face crops beside member cards
    return g


def username(brand: str, record: DeviceRecord) -> str:
    """What ``use_subject_as_username`` makes of the certificate subject (RFC 2253 order)."""
    return f"CN={record.device},OU={record.store},O={brand}"


def dynsec_document(registry: Registry, records: list[DeviceRecord]) -> dict[str, object]:
    """The plugin's whole state: one role per device, every default access denied."""
    clients, roles = [], []
    for record in records:
        rolename = f"{record.role}:{record.store}:{record.device}"
        clients.append(
            {
                "username": username(registry.brand, record),
                "textname": f"{record.role} {record.device} of store {record.store}, serial {record.serial}",
                "roles": [{"rolename": rolename}],
            }
        )
        roles.append({"rolename": rolename, "acls": grants(registry.brand, record).acls()})
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
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
    port: int = 8883
    bind: str = "0.0.0.0"
    plugin: str | None = None
    run_as: str | None = None
    log_file: Path | None = None
    persistence_dir: Path | None = None


def _conf(
    home: Home, out: Path, options: ListenerOptions, server: str, extra: list[str]
) -> str:
    lines = [
        "# Generated by `instore provision broker-config`: regenerate rather than edit.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"plugin {find_plugin(options.plugin)}",
        f"plugin_opt_config_file {out / DYNSEC_NAME}",
    ]
    if options.run_as:
        lines.append(f"user {options.run_as}")
    if options.persistence_dir:
        lines += ["persistence true", f"persistence_location {options.persistence_dir}/"]
    else:
        lines.append("persistence false")
    if options.log_file:
        lines += [f"log_dest file {options.log_file}", "log_type error", "log_type warning", "log_type notice"]
    server_dir = home.server_dir(server)
    lines += [
        "",
        f"listener {options.port} {options.bind}",
        f"cafile {home.ca_cert}",
        f"certfile {server_dir / 'server.crt'}",
        f"keyfile {server_dir / 'server.key'}",
        f"crlfile {home.crl}",
        "require_certificate true",
        "use_subject_as_username true",
        "tls_version tlsv1.2",
    ]
    return "\n".join(lines + extra) + "\n"


def _write(out: Path, conf: str, document: dict[str, object]) -> Path:
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    (out / DYNSEC_NAME).write_text(json.dumps(document, indent=2))
    (out / CONF_NAME).write_text(conf)
    return out / CONF_NAME


def write_cloud_broker(home: Home, registry: Registry, options: ListenerOptions = ListenerOptions()) -> Path:
    """Config for the cloud broker: every active device of every store, the cloud account."""
    out = home.broker_dir()
    return _write(out, _conf(home, out, options, "broker", []), dynsec_document(registry, registry.active()))


def bridge_topics(brand: str, store: str) -> list[str]:
    """Uplinks out, downlinks in; ``local/#`` (face crops) is never bridged."""
    base = f"{ROOT}/{brand}/{store}"
    out = [f"{base}/+/{level}" for level in ("evt/#", "state", "telemetry", "cfg/reported", "cmd/+/ack")]
    out.append(f"{base}/guide/+/feedback")
    inward = [f"{base}/guide/+/card", f"{base}/+/cfg/desired", f"{base}/+/cmd/+", f"{base}/esl/#"]
    return [f"topic {t} out 1" for t in out] + [f"topic {t} in 1" for t in inward]


def write_store_broker(
    home: Home, registry: Registry, store: str, options: ListenerOptions = ListenerOptions()
) -> Path:
    """Config for an in-store broker: the store's devices only, bridged to the cloud broker."""
    record = registry.store(store)
    if not record.local_broker_url:
        raise RegistryError(f"store {store!r} has no in-store broker (store create --local-broker URL)")
    bridge = registry.find(BRIDGE_DEVICE, store)
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
        f"remote_clientid {registry.brand}.{store}.{BRIDGE_DEVICE}",
        "cleansession true",
        "try_private true",
        "notifications false",
        *bridge_topics(registry.brand, store),
    ]
    out = home.broker_dir(store)
    records = [d for d in registry.active(store) if d.key != bridge.key]
    return _write(out, _conf(home, out, options, f"store-{store}", extra), dynsec_document(registry, records))
