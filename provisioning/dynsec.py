"""Live changes to a running broker through Mosquitto's dynamic-security plugin: no restart.

The provisioning ``admin`` account (services CA) connects to the broker's service listener and
sends the plugin's commands on ``$CONTROL/dynamic-security/v1``; the plugin answers on
``.../response``, applies each change at once (ACL checks look the client up on every publish and
subscribe), kicks the connections of a deleted client and saves its JSON file itself.

``sync`` makes the broker's clients and roles equal to what the registry says (the same document
``broker_config`` writes for a fresh start): new devices are created (with their role first),
revoked ones deleted (their connection is dropped at once and, reconnecting, they get nothing),
roles whose grants changed are modified. Nothing else on the broker moves: sessions, queued
messages and every other connection stay as they are, so there is no loss window.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from protocol import transport
from provisioning import fleet
from provisioning.broker_config import (
    CONTROL_RESPONSE,
    CONTROL_TOPIC,
    PID_NAME,
    client_entry,
    cloud_records,
    role_entry,
    store_records,
)
from provisioning.registry import Home, Registry

log = logging.getLogger(__name__)


class DynsecError(RuntimeError):
    """The broker could not be reached, or refused a command; the message says which and why."""


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    reloaded: bool = False  # the broker was sent SIGHUP (CRL reloaded)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.deleted or self.modified)


class DynsecAdmin:
    """One admin connection; ``run`` sends commands and returns the plugin's responses."""

    def __init__(self, url: transport.BrokerUrl, *, timeout: float = 10.0) -> None:
        self.url, self.timeout = url, timeout
        self._client = transport.make_client(url, f"provision-admin-{uuid.uuid4().hex[:12]}")
        self._responses: dict[str, dict] = {}
        self._arrived = threading.Condition()
        self._client.on_message = self._on_message

    def __enter__(self) -> DynsecAdmin:
        subscribed = threading.Event()
        granted: list[bool] = []

        def on_subscribe(client, userdata, mid, reason_codes, properties) -> None:
            granted.append(not reason_codes[0].is_failure)
            subscribed.set()

        self._client.on_subscribe = on_subscribe
        transport.subscribe_on_connect(self._client, [(CONTROL_RESPONSE, 1)])
        try:
            transport.start(self._client, self.url, timeout=self.timeout)
        except ConnectionError as exc:
            raise DynsecError(str(exc)) from None
        if not subscribed.wait(self.timeout) or not granted[0]:
            transport.stop(self._client)
            raise DynsecError(f"broker {self.url} refused the admin's subscription to {CONTROL_RESPONSE}")
        return self

    def __exit__(self, *exc: object) -> None:
        transport.stop(self._client)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._arrived:
            for response in responses:
                if isinstance(response, dict) and "correlationData" in response:
                    self._responses[response["correlationData"]] = response
            self._arrived.notify_all()

    def run(self, commands: list[dict], *, allow: tuple[str, ...] = ()) -> list[dict]:
        """Send the commands in one message; raise on any error except those in ``allow``."""
        if not commands:
            return []
        tagged = [dict(c, correlationData=uuid.uuid4().hex) for c in commands]
        info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        info.wait_for_publish(self.timeout)
        keys = [c["correlationData"] for c in tagged]
        with self._arrived:
            if not self._arrived.wait_for(lambda: all(k in self._responses for k in keys), self.timeout):
                raise DynsecError(f"broker {self.url} did not answer {len(commands)} dynamic-security commands "
                                  f"within {self.timeout:.0f} s (is the admin granted {CONTROL_TOPIC}?)")
            responses = [self._responses.pop(k) for k in keys]
        for command, response in zip(commands, responses):
            error = response.get("error")
            if error and error not in allow:
                raise DynsecError(f"{command['command']} {command.get('username') or command.get('rolename') or ''}: {error}")
        return responses

    def state(self) -> tuple[dict[str, dict], dict[str, dict]]:
        """The broker's clients and roles by name, with their roles and ACLs."""
        clients, roles = self.run([{"command": "listClients", "verbose": True}, {"command": "listRoles", "verbose": True}])
        return ({c["username"]: c for c in clients["data"]["clients"]},
                {r["rolename"]: r for r in roles["data"]["roles"]})


def _acl_key(acls: list[dict]) -> set[tuple]:
    return {(a["acltype"], a["topic"], a.get("priority", 0), a.get("allow", True)) for a in acls or []}


def sync(home: Home, registry: Registry, url: transport.BrokerUrl, *, store: str | None = None,
         timeout: float = 10.0) -> SyncResult:
    """Make the running broker (the cloud's, or ``store``'s) know exactly the registry's active devices."""
    if store is None:
        records, store_local = cloud_records(registry), False
    else:
        records, store_local = store_records(registry, store), True
    want_clients: dict[str, dict[str, Any]] = {
        str(c["username"]): c for c in (client_entry(registry.brand, r) for r in records)}
    want_roles: dict[str, dict[str, Any]] = {
        str(r["rolename"]): r for r in (role_entry(registry.brand, d, store_local=store_local) for d in records)}
    result = SyncResult()
    with DynsecAdmin(url, timeout=timeout) as admin:
        have_clients, have_roles = admin.state()
        commands: list[dict] = []
        for name, role in want_roles.items():
            if name not in have_roles:
                commands.append({"command": "createRole", **role})
            elif _acl_key(have_roles[name].get("acls", [])) != _acl_key(role["acls"]):
                commands.append({"command": "modifyRole", **role})
                result.modified.append(name)
        for name, client in want_clients.items():
            if name not in have_clients:
                commands.append({"command": "createClient", **client})
                result.created.append(name)
            elif {r["rolename"] for r in have_clients[name].get("roles", [])} != {r["rolename"] for r in client["roles"]}:
                commands.append({"command": "modifyClient", "username": name, "roles": client["roles"]})
                result.modified.append(name)
        for name in have_clients:
            if name not in want_clients:
                commands.append({"command": "deleteClient", "username": name})  # kicks its connection
                result.deleted.append(name)
        for name in have_roles:
            if name not in want_roles:
                commands.append({"command": "deleteRole", "rolename": name})
        admin.run(commands)
    return result


def admin_url(home: Home, registry: Registry, store: str | None = None, url: str | None = None) -> transport.BrokerUrl:
    """The broker's service listener, reached with the admin account's certificate."""
    from provisioning.broker_config import saved_options

    if url is None:
        if store is None:
            url = registry.service_url
            options = saved_options(home.broker_dir())
            if options and options.service_port:
                url = f"mqtts://{transport.BrokerUrl.parse(url).host}:{options.service_port}"
        else:
            local = transport.BrokerUrl.parse(registry.store(store).local_broker_url or "")
            options = saved_options(home.broker_dir(store))
            url = f"mqtts://{local.host}:{options.service_port if options and options.service_port else local.port + 1}"
    return transport.BrokerUrl.parse(url).with_tls(fleet.admin_tls(home))


def reload_crl(home: Home, store: str | None = None) -> bool:
    """SIGHUP the broker if it runs on this machine (its pid file): it reloads the CRL, keeps its
    sessions and the plugin's state. False when there is no such process here."""
    pid_file = home.broker_dir(store) / PID_NAME
    try:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True
