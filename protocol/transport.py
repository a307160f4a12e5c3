"""MQTT plumbing every wing shares: broker URLs, paho 2.x clients, publishing with expiry.

The URL says what the broker speaks: ``mqtt://host:port`` is MQTT 5 (Mosquitto), and
``mqtt://host:port?protocol=3.1.1`` is for brokers without v5 (the embedded amqtt). Without v5
there is no broker-side message expiry, so consumers also check the ``expires_at`` inside
messages.

``mqtts://host:port`` is MQTT over TLS with a client certificate: the store's brokers require
one, and the certificate is the device's identity (see docs/SECURITY.md). The CA, certificate
and key files come from the device's install bundle (``protocol.bundle``) or from the URL's
``ca=``, ``cert=`` and ``key=`` query parameters.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel

from protocol.codec import encode

log = logging.getLogger(__name__)


class BrokerUrlError(ValueError):
    pass


@dataclass(frozen=True)
class TlsFiles:
    """The files a client needs for mutual TLS: the brand CA, its own certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def check(self) -> None:
        for kind, path in (("CA", self.ca), ("certificate", self.cert), ("key", self.key)):
            if not path.is_file():
                raise BrokerUrlError(f"TLS {kind} file {path} does not exist")


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    mqtt5: bool = True
    tls: bool = False
    tls_files: TlsFiles | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise BrokerUrlError(f"broker URL {url!r} must look like mqtt://host:port or mqtts://host:port")
        if not parts.hostname:
            raise BrokerUrlError(f"broker URL {url!r} has no host")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise BrokerUrlError(f"broker URL {url!r} has an invalid port") from None
        query = parse_qs(parts.query)
        protocol = query.get("protocol", ["5"])[0]
        if protocol not in ("5", "3.1.1"):
            raise BrokerUrlError(f"broker URL {url!r}: protocol must be 5 or 3.1.1")
        files = None
        given = [name for name in ("ca", "cert", "key") if name in query]
        if given and not tls:
            raise BrokerUrlError(f"broker URL {url!r}: ca/cert/key need an mqtts:// URL")
        if given:
            if len(given) != 3:
                raise BrokerUrlError(f"broker URL {url!r}: give all of ca=, cert= and key=")
            files = TlsFiles(*(Path(query[name][0]) for name in ("ca", "cert", "key")))
        return cls(host=parts.hostname, port=port, mqtt5=protocol == "5", tls=tls, tls_files=files)

    def with_tls(self, files: TlsFiles) -> BrokerUrl:
        """The same broker reached with these TLS files (e.g. from an install bundle)."""
        if not self.tls:
            raise BrokerUrlError(f"broker URL {self} is not mqtts://, so it takes no TLS files")
        return replace(self, tls_files=files)

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}" + ("" if self.mqtt5 else "?protocol=3.1.1")


def _configure_tls(client: mqtt.Client, url: BrokerUrl) -> None:
    """Mutual TLS, at least TLS 1.2, server name checked against the broker certificate."""
    if url.tls_files is None:
        raise BrokerUrlError(f"broker URL {url} needs a CA, certificate and key (an install bundle)")
    url.tls_files.check()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(url.tls_files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(url.tls_files.cert), str(url.tls_files.key))
    except (ssl.SSLError, OSError) as exc:
        raise BrokerUrlError(f"cannot load client certificate {url.tls_files.cert}: {exc}") from None
    client.tls_set_context(context)


def make_client(
    url: BrokerUrl,
    client_id: str,
    *,
    will: tuple[str, BaseModel] | None = None,
    clean: bool = True,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client (callback API v2) with automatic reconnect; call ``start`` to connect.

    ``manual_ack``: the caller acknowledges each QoS 1 message itself (``client.ack``) once it is
    safely stored, instead of paho acknowledging it on receipt.
    """
    protocol = mqtt.MQTTv5 if url.mqtt5 else mqtt.MQTTv311
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, manual_ack=manual_ack,
        clean_session=None if url.mqtt5 else clean,  # MQTT 5 sets clean start at connect instead
    )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if url.tls:
        _configure_tls(client, url)
    if will is not None:
        topic, message = will
        client.will_set(topic, encode(message), qos=1, retain=True)
    return client


def start(client: mqtt.Client, url: BrokerUrl, *, timeout: float = 10.0, session_expiry_s: int | None = None) -> None:
    """Connect and run paho's network loop in its own thread; wait for the first CONNACK.

    paho reconnects by itself afterwards and calls the client's ``on_connect`` each time, so
    subscriptions belong there (see ``subscribe_on_connect``), set before calling this.
    ``session_expiry_s`` (MQTT 5) resumes the client id's session and asks the broker to keep it,
    with its subscriptions and undelivered QoS 1 messages, that long after a disconnect (for MQTT
    3.1.1 make the client with ``clean=False`` instead).
    """
    connected = threading.Event()
    failure: list[str] = []
    callers_on_connect = client.on_connect

    def on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            failure.append(str(reason_code))
        elif callers_on_connect is not None:
            callers_on_connect(c, userdata, flags, reason_code, properties)
        connected.set()

    client.on_connect = on_connect
    if url.mqtt5:
        properties = None
        if session_expiry_s:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = session_expiry_s
        client.connect_async(url.host, url.port, keepalive=30, clean_start=not session_expiry_s, properties=properties)
    else:
        client.connect_async(url.host, url.port, keepalive=30)
    client.loop_start()
    if not connected.wait(timeout) or failure:
        client.loop_stop()
        reason = failure[0] if failure else f"no answer within {timeout:.0f} s"
        if url.tls and not failure:
            reason += " (TLS: is the certificate issued by the broker's CA, unexpired and not revoked?)"
        raise ConnectionError(f"cannot connect to broker {url}: {reason}")


def publish(
    client: mqtt.Client,
    topic: str,
    message: BaseModel,
    *,
    qos: int = 1,
    retain: bool = False,
    expiry_s: int | None = None,
) -> mqtt.MQTTMessageInfo:
    properties = None
    if expiry_s is not None and client.protocol == mqtt.MQTTv5:
        properties = _expiry(max(1, int(expiry_s)))
    return client.publish(topic, encode(message), qos=qos, retain=retain, properties=properties)


class _Expiry(Properties):
    """PUBLISH properties holding only a message expiry, packed once. paho packs a message's properties
    on every publish by asking for each of the ~27 properties MQTT 5 defines; a card and each label
    flash carry the same expiry, so the cloud's ingest paid that walk (and a new object) per message
    (issue 19, tenth pass). Shared between publishes and threads: never changed after it is made."""

    def __init__(self, seconds: int) -> None:
        super().__init__(PacketTypes.PUBLISH)
        self.MessageExpiryInterval = seconds
        object.__setattr__(self, "_packed", super().pack())  # Properties refuses attributes it does not define

    def pack(self) -> bytes:
        return self._packed  # type: ignore[attr-defined]


@lru_cache(maxsize=256)
def _expiry(seconds: int) -> _Expiry:
    return _Expiry(seconds)


def publish_confirmed(
    client: mqtt.Client, topic: str, message: BaseModel, *, timeout: float, qos: int = 1, expiry_s: int | None = None,
) -> str | None:
    """Publish and wait for the broker's acknowledgement: None once it has the message, else why not.

    For senders that keep their own retry state (command re-sends, pending alerts): they may mark
    a row sent only when the broker confirmed it. An MQTT 5 PUBACK with a failure reason (>= 0x80,
    e.g. 0x87 Not authorized) is not a confirmation: paho counts the message as published, so the
    reason is read from the acknowledgement itself (``track_refusals``).
    """
    refusals = track_refusals(client)
    info = publish(client, topic, message, qos=qos, expiry_s=expiry_s)
    if info.rc != mqtt.MQTT_ERR_SUCCESS:
        return mqtt.error_string(info.rc)
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError) as exc:
        return str(exc)
    if not info.is_published():
        return f"not acknowledged within {timeout} s"
    with _refusal_lock:
        refused = refusals.pop(info.mid, None)
    return f"broker refused it: {refused}" if refused else None


_refusal_lock = threading.Lock()


def track_refusals(client: mqtt.Client) -> dict[int, str]:
    """Record the failure reason of every refused PUBACK by message id (``{mid: reason}``), keeping the
    client's own ``on_publish``; installed once per client, returns the client's record."""
    with _refusal_lock:
        record = getattr(client, "_instore_refusals", None)
        if record is not None:
            return record
        record = client._instore_refusals = {}  # type: ignore[attr-defined]
    callers = client.on_publish

    def on_publish(c, userdata, mid, reason_code, properties):
        if reason_code is not None and getattr(reason_code, "is_failure", False):
            with _refusal_lock:
                record[mid] = str(reason_code)
        if callers is not None:
            callers(c, userdata, mid, reason_code, properties)

    client.on_publish = on_publish
    return record


def subscribe_on_connect(client: mqtt.Client, filters: list[tuple[str, int]]) -> None:
    """Subscribe now and after every reconnect (a clean session forgets subscriptions)."""

    def on_connect(c, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            c.subscribe(filters)

    client.on_connect = on_connect


def stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()

