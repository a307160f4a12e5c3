"""802.11 probe requests (scapy packets, with or without radiotap) -> ``Observation``.

The raw MAC is read, checked and keyed here and nowhere else. Frames that are not probe
requests are counted as ignored; frames that claim to be but cannot be read (truncated, bad
FCS, multicast source) are counted as malformed. Nothing here raises on bad input.
"""

from __future__ import annotations

import hashlib

from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11ProbeReq, RadioTap
from scapy.packet import Packet

from edge.wifi.keys import DeviceKeyer
from edge.wifi.observation import Observation, ParseStats
from protocol.wifi import MacError, mac_bytes

#: Elements whose content is the phone's (rates, HT/VHT capabilities, extended capabilities):
#: kept whole. Vendor (221) and extension (255) elements keep only their type, because several
#: carry per-probe counters (measured on the lab capture: ext 2 and Microsoft 00:50:f2 type 8
#: change every burst). SSID (0) and DS parameter set (3) change with the network asked for
#: and the channel, so they only count by position.
STABLE_CONTENT = frozenset({1, 45, 50, 127, 191})
TYPE_PREFIX = {221: 4, 255: 1}
#: HE capabilities (extension 35) identify a chipset and do not change between probes.
HE_CAPABILITIES = 35
#: RSSI outside this range is a sensor glitch (one capture reports +15 dBm), not a signal.
RSSI_RANGE = (-120, -1)


def fingerprint(packet: Packet) -> str:
    """Hash of the ordered information elements except the volatile ones. A phone keeps these
    (rates, HT/VHT/HE capabilities, extended capabilities, vendor elements) when it rotates its
    MAC, while different models differ (Vanhoef et al. 2016)."""
    digest = hashlib.blake2b(digest_size=8)
    for layer in packet.iterpayloads():
        if not isinstance(layer, Dot11Elt):
            continue
        info = bytes(layer.info or b"")
        if layer.ID in TYPE_PREFIX and not (layer.ID == 255 and info[:1] == bytes([HE_CAPABILITIES])):
            info = info[: TYPE_PREFIX[layer.ID]]
        elif layer.ID not in STABLE_CONTENT and layer.ID != 255:
            info = b""
        digest.update(bytes([layer.ID, len(info)]) + info)
    return digest.hexdigest()


def radio(packet: Packet) -> tuple[int | None, int | None, bool]:
    """RSSI (dBm), channel (MHz) and whether the radio flagged a bad FCS; all absent without radiotap."""
    if not packet.haslayer(RadioTap):
        return None, None, False
    tap = packet[RadioTap]
    rssi = tap.fields.get("dBm_AntSignal")
    if rssi is not None and not RSSI_RANGE[0] <= rssi <= RSSI_RANGE[1]:
        rssi = None
    flags = tap.fields.get("Flags")
    bad_fcs = flags is not None and "badFCS" in flags
    return rssi, tap.fields.get("ChannelFrequency"), bad_fcs


class ProbeParser:
    def __init__(self, keyer: DeviceKeyer) -> None:
        self.keyer = keyer
        self.stats = ParseStats()

    def parse(self, packet: Packet, ts: float | None = None) -> Observation | None:
        self.stats.frames += 1
        try:
            return self._parse(packet, float(packet.time) if ts is None else ts)
        except Exception as exc:
            self.stats.malformed[f"undecodable:{type(exc).__name__}"] += 1
            return None

    def _parse(self, packet: Packet, ts: float) -> Observation | None:
        if not packet.haslayer(Dot11):
            self.stats.ignored["not_802.11"] += 1
            return None
        if not packet.haslayer(Dot11ProbeReq):
            self.stats.ignored["not_probe_request"] += 1
            return None
        rssi, channel, bad_fcs = radio(packet)
        if bad_fcs:
            self.stats.malformed["bad_fcs"] += 1
            return None
        header = packet[Dot11]
        try:
            mac = mac_bytes(bytes.fromhex((header.addr2 or "").replace(":", "")))
        except (MacError, ValueError):
            self.stats.malformed["bad_source_mac"] += 1
            return None
        self.stats.probes += 1
        randomised = bool(mac[0] & 0x02)
        return Observation(
            ts=ts,
            key=self.keyer.key(mac, randomised, ts),
            randomised=randomised,
            rssi=rssi,
            channel=channel,
            seq=(header.SC >> 4) if header.SC is not None else None,
            fingerprint=fingerprint(packet),
        )
