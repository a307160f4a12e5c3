"""802.11 sources: replay of pcap/pcapng files and live capture from a monitor-mode interface.

Both hand scapy packets to ``ProbeParser`` and yield ``Observation``; a live source also yields
None when the air has been quiet for a second, so the caller can close minutes on the wall clock.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Generator
from pathlib import Path

from edge.wifi.frames import ProbeParser
from edge.wifi.observation import Observation

log = logging.getLogger(__name__)


class WifiSourceError(ValueError):
    pass


def replay(path: Path, parser: ProbeParser, speed: float = 0.0,
           stop: threading.Event | None = None) -> Generator[Observation, None, None]:
    """Every probe request of a capture (radiotap or raw 802.11, pcap or pcapng) in file order.

    ``speed`` 0 replays as fast as possible; 1 at capture pace; 60 one captured minute per second.
    A missing or unreadable file fails here, at the call, not at the first ``next``; ``stop``
    ends a paced replay without waiting out its delay.
    """
    from scapy.error import Scapy_Exception
    from scapy.utils import PcapReader

    if not path.is_file():
        raise WifiSourceError(f"capture {path} does not exist")
    try:
        reader = PcapReader(str(path))
    except (Scapy_Exception, OSError, EOFError) as exc:
        raise WifiSourceError(f"capture {path} is not a pcap/pcapng file: {exc}") from None
    return _probes(reader, path, parser, speed, stop or threading.Event())


def _probes(reader, path: Path, parser: ProbeParser, speed: float, stop: threading.Event) -> Generator[Observation, None, None]:
    started = time.monotonic()
    first: float | None = None
    with reader:
        while not stop.is_set():
            try:
                packet = reader.read_packet()
            except EOFError:
                return
            except Exception as exc:
                parser.stats.malformed[f"unreadable_record:{type(exc).__name__}"] += 1
                log.warning("capture %s ends in an unreadable record: %s", path.name, exc)
                return
            obs = parser.parse(packet)
            if obs is None:
                continue
            if speed > 0:
                first = obs.ts if first is None else first
                delay = (obs.ts - first) / speed - (time.monotonic() - started)
                if delay > 0 and stop.wait(min(delay, 60.0)):
                    return
            yield obs


def live(iface: str, parser: ProbeParser, stop: threading.Event) -> Generator[Observation | None, None, None]:
    """Probe requests from a monitor-mode interface (needs root or CAP_NET_RAW)."""
    from scapy.sendrecv import AsyncSniffer

    frames: queue.Queue = queue.Queue(maxsize=10_000)

    def keep(packet) -> None:
        try:
            frames.put_nowait((packet, time.time()))
        except queue.Full:
            parser.stats.malformed["dropped_queue_full"] += 1

    sniffer = AsyncSniffer(iface=iface, prn=keep, store=False, monitor=True)
    try:
        sniffer.start()
    except (OSError, PermissionError) as exc:
        raise WifiSourceError(f"cannot capture on {iface}: {exc}") from None
    time.sleep(0.2)
    if not sniffer.running:
        raise WifiSourceError(f"cannot capture on {iface}: {sniffer.exception or 'sniffer stopped'}")
    try:
        while not stop.is_set():
            try:
                packet, ts = frames.get(timeout=1.0)
            except queue.Empty:
                yield None
                continue
            obs = parser.parse(packet, ts)
            if obs is not None:
                yield obs
    finally:
        if sniffer.running:
            sniffer.stop()
