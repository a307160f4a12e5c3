"""One Wi-Fi source turned into presence and footfall messages, for both ``instore edge wifi run``
(messages straight to MQTT) and the edge box (messages into its on-disk outbox).

Everything that can be wrong with the settings (secret, calibration, registered keys, capture
file, listening port) fails in the constructor with a ``WifiError``, in the caller's thread, so a
box refuses a bad ``[wifi]`` section at start like a bad camera. The loop then runs in ``run``
(the command, in its main thread) or in a thread of its own (``start``, the box) until the source
ends or ``stop``; either way the last minute and the open sessions are closed and sent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Generator
from pathlib import Path

from edge.placement import Placement
from edge.wifi.background import Background
from edge.wifi.calibration import Calibration
from edge.wifi.engine import WifiEngine
from edge.wifi.frames import ProbeParser
from edge.wifi.keys import DeviceKeyer
from edge.wifi.observation import Observation
from edge.wifi.rules import PresenceRules
from edge.wifi.sensorfeed import FeedListener, FeedParser
from edge.wifi.settings import WifiSettings
from edge.wifi.sink import Sink
from edge.wifi.sources import WifiSourceError, live, replay
from edge.wifi.state import WifiState
from protocol.wifi import MIN_SECRET_BYTES, MacError, device_key

log = logging.getLogger(__name__)

SECRET_ENV = "INSTORE_WIFI_SECRET"


class WifiError(ValueError):
    """Wi-Fi settings that cannot run; the message names the file or option."""


def load_secret(path: Path | None) -> bytes:
    """From the file if given, else from $INSTORE_WIFI_SECRET; never from a command line or a
    config file, where it would show in the process list or a backup."""
    if path is not None:
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise WifiError(f"cannot read brand secret file {path}: {exc.strerror}") from None
    else:
        secret = os.environ.get(SECRET_ENV, "").encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise WifiError(f"brand secret (secret file or ${SECRET_ENV}) must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def keyed_macs(macs: list[str], secret: bytes) -> set[str]:
    """The installer's equipment MACs as keys; the MACs themselves go no further."""
    try:
        return {device_key(mac, secret) for mac in macs}
    except MacError as exc:
        raise WifiError(f"background MAC: {exc}") from None


def read_keys(path: Path) -> set[str]:
    try:
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as exc:
        raise WifiError(f"cannot read registered keys file {path}: {exc}") from None


class WifiRunner:
    def __init__(self, settings: WifiSettings, placement: Placement, sink: Sink) -> None:
        self.settings = settings
        self.placement = placement
        secret = load_secret(settings.secret_file)
        try:
            calibration = Calibration.load(settings.calibration) if settings.calibration else None
        except (OSError, ValueError) as exc:
            raise WifiError(f"calibration {settings.calibration}: {exc}") from None
        registered = read_keys(settings.registered) if settings.registered else None
        rules = PresenceRules()
        threshold = (settings.rssi_min_dbm if settings.rssi_min_dbm is not None
                     else calibration.rssi_min_dbm if calibration else rules.rssi_min_dbm)
        self.rules = rules.model_copy(update={"rssi_min_dbm": threshold})
        state = WifiState(settings.db) if settings.db else None
        known = (keyed_macs(settings.background_macs, secret)
                 | set(calibration.background_keys if calibration else ())
                 | (state.background_keys() if state else set()))
        self._stop = threading.Event()
        self._listener: FeedListener | None = None
        try:
            self.parser, self._observations = self._open(DeviceKeyer(secret, network=placement.store))
        except (WifiSourceError, OSError) as exc:
            raise WifiError(f"wifi source {settings.source}: {exc}") from None
        self.engine = WifiEngine(placement, self.rules, sink, Background(self.rules.background_hours, known),
                                 registered=registered, state=state)
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run_logged, name="wifi", daemon=True)

    def _open(self, keyer: DeviceKeyer) -> tuple[ProbeParser | FeedParser, Generator[Observation | None, None, None]]:
        kind, _, arg = self.settings.source.partition(":")
        if self.settings.kind in ("udp", "http"):
            feed = FeedParser(keyer)
            self._listener = FeedListener(kind, int(arg), feed)  # binds now: a busy port fails here
            return feed, self._listener.observations(self._stop)
        probes = ProbeParser(keyer)
        if self.settings.kind == "iface":
            return probes, live(arg, probes, self._stop)
        return probes, replay(Path(self.settings.source), probes, self.settings.speed, self._stop)

    @property
    def finite(self) -> bool:
        return self.settings.finite

    def run(self) -> None:
        """Feed the engine until the source ends or ``stop``, then close the last minute and
        every open session. A source that fails (no capture rights on the interface, a
        truncated file) ends the loop with ``error`` set."""
        p = self.placement
        log.info("wifi %s/%s/%s on %s, in-store from %d dBm, %d equipment keys", p.brand, p.store, p.device,
                 self.settings.kind, self.rules.rssi_min_dbm, len(self.engine.background.keys))
        try:
            if self._listener is not None:
                self._listener.start()
            for obs in self._observations:
                if self._stop.is_set():
                    break
                if obs is None:
                    self.engine.advance(time.time())
                else:
                    self.engine.feed(obs)
        except WifiSourceError as exc:
            self.error = str(exc)
            log.error("wifi source %s: %s", self.settings.source, exc)
        finally:
            self._stop.set()
            self.engine.finish()
            self._observations.close()
            if self._listener is not None:
                self._listener.stop()

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("wifi stopped")

    def start(self) -> None:
        """Run in a thread of its own (the edge box)."""
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def summary(self) -> dict[str, object]:
        """Counts for the command's and the box's last JSON line."""
        return {**self.parser.stats.as_dict(), "minutes": self.engine.minutes,
                "presence_events": self.engine.presence_events,
                "background_keys": len(self.engine.background.keys), "rssi_min_dbm": self.rules.rssi_min_dbm,
                **({"error": self.error} if self.error else {})}
