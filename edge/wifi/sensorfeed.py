"""JSON feeds from commercial Wi-Fi probe sensors (UDP datagrams or HTTP POSTs).

Sensors differ in framing, so a payload may be one report, a list of reports, or an object with
a ``data`` list; each report needs ``mac``, ``rssi`` and ``ts`` (epoch seconds or milliseconds,
or ISO 8601), optionally ``channel`` (MHz) and ``network`` (true: the store's own access point
reports a client associated to the store's network, whose per-network address is stable there and
is keyed with ``protocol.wifi.network_device_key``). A bad report is rejected with a reason that never
quotes the MAC, the rest of the payload is kept, and the listener keeps running.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import socket
import threading
from collections import deque
from collections.abc import Generator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge.wifi.keys import DeviceKeyer
from edge.wifi.observation import Observation, ParseStats
from protocol.wifi import MacError, mac_bytes

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 256 * 1024
#: Epoch values above this are milliseconds (year 2286 in seconds).
MS_THRESHOLD = 10_000_000_000


class SensorReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mac: str = Field(min_length=1, max_length=32)
    rssi: int = Field(ge=-120, le=-1)
    ts: float = Field(gt=0)
    channel: int | None = Field(default=None, ge=1, le=7200)
    network: bool = Field(default=False, description="an access point's associated client on the store's own "
                                                     "network: its per-network address, stable there")

    @field_validator("ts", mode="before")
    @classmethod
    def epoch(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return datetime.fromisoformat(value).timestamp()
        if isinstance(value, (int, float)) and value > MS_THRESHOLD:
            return value / 1000
        return value


def reason_of(exc: ValidationError) -> str:
    """The first error's field and message, without the offending input (it may be a MAC)."""
    first = exc.errors(include_input=False, include_url=False)[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'report'}: {first['msg']}"


class FeedParser:
    def __init__(self, keyer: DeviceKeyer) -> None:
        self.keyer = keyer
        self.stats = ParseStats()
        self.rejects: deque[str] = deque(maxlen=1000)  # the latest reasons, for answers and tests
        self.rejected = 0

    def reject(self, reason: str) -> None:
        self.stats.malformed[re.sub(r"^report\[\d+\]\.?", "", reason.split(":")[0]) or "report"] += 1
        self.rejected += 1
        self.rejects.append(reason)
        log.warning("sensor report rejected: %s", reason)

    def parse(self, payload: bytes) -> list[Observation]:
        if len(payload) > MAX_PAYLOAD_BYTES:
            self.reject(f"payload: {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
            return []
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.reject(f"payload: not UTF-8 JSON ({exc.__class__.__name__})")
            return []
        records = data.get("data") if isinstance(data, dict) and "data" in data else data
        records = records if isinstance(records, list) else [records]
        observations = []
        for index, record in enumerate(records):
            self.stats.frames += 1
            obs = self._record(index, record)
            if obs is not None:
                observations.append(obs)
        return observations

    def _record(self, index: int, record: object) -> Observation | None:
        if not isinstance(record, dict):
            self.reject(f"report[{index}]: must be a JSON object")
            return None
        try:
            report = SensorReport.model_validate(record)
            mac = mac_bytes(report.mac)
        except ValidationError as exc:
            self.reject(f"report[{index}].{reason_of(exc)}")
            return None
        except MacError as exc:
            self.reject(f"report[{index}].mac: {exc}")
            return None
        self.stats.probes += 1
        if report.network and self.keyer.network is not None:  # stable on this network, whatever its bit says
            return Observation(ts=report.ts, key=self.keyer.network_key(mac), randomised=False, rssi=report.rssi,
                               channel=report.channel)
        randomised = bool(mac[0] & 0x02)
        return Observation(ts=report.ts, key=self.keyer.key(mac, randomised, report.ts),
                           randomised=randomised, rssi=report.rssi, channel=report.channel)


class FeedListener:
    """A UDP or HTTP listener on loopback-or-any; parsed observations come out of ``observations``."""

    def __init__(self, kind: str, port: int, parser: FeedParser, host: str = "0.0.0.0") -> None:
        if kind not in ("udp", "http"):
            raise ValueError(f"feed kind must be udp or http, got {kind!r}")
        self.kind, self.parser = kind, parser
        self.queue: queue.Queue[Observation] = queue.Queue(maxsize=100_000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if kind == "udp":
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._socket.bind((host, port))
            self._socket.settimeout(0.5)
            self.port = self._socket.getsockname()[1]
            self._thread = threading.Thread(target=self._serve_udp, daemon=True)
        else:
            self._http = ThreadingHTTPServer((host, port), self._handler())
            self.port = self._http.server_address[1]
            self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.kind == "http":
            self._http.shutdown()
            self._http.server_close()
        else:
            self._thread.join(timeout=2)
            self._socket.close()

    def observations(self, stop: threading.Event) -> Generator[Observation | None, None, None]:
        while not stop.is_set():
            try:
                yield self.queue.get(timeout=1.0)
            except queue.Empty:
                yield None

    def _accept(self, payload: bytes) -> tuple[int, list[str]]:
        with self._lock:
            before = self.parser.rejected
            observations = self.parser.parse(payload)
            rejected = self.parser.rejected - before
            reasons = list(self.parser.rejects)[-rejected:] if rejected else []
        for obs in observations:
            self.queue.put(obs)
        return len(observations), reasons

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                payload, _ = self._socket.recvfrom(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            self._accept(payload)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_PAYLOAD_BYTES:
                    self._answer(413, {"error": f"payload exceeds {MAX_PAYLOAD_BYTES} bytes"})
                    return
                accepted, reasons = listener._accept(self.rfile.read(length))
                self._answer(200, {"accepted": accepted, "rejected": len(reasons), "reasons": reasons})

            def _answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("sensor http: " + format, *args)

        return Handler
