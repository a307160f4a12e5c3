"""Wi-Fi fixtures: the real captures, parsed once per session, and the MACs they contain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.dot11 import Dot11
from scapy.utils import PcapReader

from edge.wifi.frames import ProbeParser
from edge.wifi.keys import DeviceKeyer
from edge.wifi.observation import Observation, ParseStats
from edge.wifi.sources import replay

WIFI = Path(__file__).resolve().parents[3] / "shared" / "data" / "wifi"
LAB = WIFI / "fryza-sc6-61"
LAB_DAY = LAB / "sc6-61_2022-10-19_anonymized.pcap"
LAB_TRUTH = LAB / "sc6-61_2022-10-19_ver-99.csv"
EMPTY_DAY = LAB / "sc6-61_2024-03-31_anonymized.pcap"
#: The lab's fixed computers, as listed in the capture's README.
LAB_EQUIPMENT = """dc:fb:48:68:be:e4 dc:fb:48:8c:71:fc dc:fb:48:2a:52:e0 dc:fb:48:f5:c6:c2 dc:fb:48:e3:ab:78
dc:fb:48:00:51:90 dc:fb:48:75:d8:42 dc:fb:48:de:86:8d dc:fb:48:dd:c6:0b dc:fb:48:55:d5:78 dc:fb:48:c2:1d:64
40:ec:99:f9:34:a6 40:ec:99:8e:3f:63 40:ec:99:1f:3e:75""".split()
SECRET = b"test-brand-secret-0123456789abcdef"


@dataclass
class Parsed:
    observations: list[Observation]
    stats: ParseStats


def parse(path: Path) -> Parsed:
    parser = ProbeParser(DeviceKeyer(SECRET))
    return Parsed(list(replay(path, parser)), parser.stats)


@pytest.fixture(scope="session")
def captures() -> list[Path]:
    found = sorted(p for p in WIFI.rglob("*") if p.suffix in (".pcap", ".cap", ".pcapng"))
    if not found:
        pytest.fail(f"no captures under {WIFI} (../shared/data/wifi from the repo)")
    return found


@pytest.fixture(scope="session")
def parsed(captures) -> dict[str, Parsed]:
    return {path.name: parse(path) for path in captures}


@pytest.fixture(scope="session")
def raw_macs(captures) -> set[str]:
    """Every source MAC in every capture, as it would be written in lower and upper case, with
    and without separators: what must never appear in anything the box emits."""
    macs: set[str] = set()
    for path in captures:
        with PcapReader(str(path)) as reader:
            for packet in reader:
                if packet.haslayer(Dot11) and packet[Dot11].addr2:
                    macs.add(packet[Dot11].addr2.lower())
    macs.discard("ff:ff:ff:ff:ff:ff")
    forms = set()
    for mac in macs:
        bare = mac.replace(":", "")
        forms |= {mac, mac.upper(), bare, bare.upper(), mac.replace(":", "-")}
    return forms


def leaked(text: str, forms: set[str]) -> list[str]:
    """The MAC forms found in ``text`` (a 12-hex form inside a 64-hex key is a 1e-13 chance)."""
    low = text.lower()
    return sorted(form for form in forms if form.lower() in low)[:5]
