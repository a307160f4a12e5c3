"""Every real capture parses: radiotap with extended bitmaps and FCS, raw 802.11, non-probes."""

from __future__ import annotations

import pytest
from scapy.layers.dot11 import Dot11, Dot11ProbeReq, RadioTap

from edge.wifi.frames import ProbeParser
from edge.wifi.keys import DeviceKeyer
from edge.wifi.sources import WifiSourceError, replay
from protocol.wifi import MacError, is_randomised, mac_bytes

from .conftest import SECRET


def test_every_capture_parses_with_probes(parsed):
    for name, result in parsed.items():
        assert result.stats.probes > 0, name
        assert not any(k.startswith("undecodable") for k in result.stats.malformed), (name, result.stats)
        assert result.stats.frames == result.stats.probes + sum(result.stats.ignored.values()) + sum(result.stats.malformed.values())


def test_radiotap_with_extended_present_bitmaps_and_fcs(parsed):
    result = parsed["test1.pcap"]
    assert result.stats.probes == 5
    assert result.stats.ignored["not_probe_request"] == 187
    assert all(o.rssi is not None and o.channel == 2437 for o in result.observations)


def test_raw_80211_without_radiotap(parsed):
    result = parsed["n-02.cap"]
    assert result.stats.probes == 9
    assert result.stats.ignored["not_probe_request"] == 209
    assert all(o.rssi is None and o.channel is None and o.seq is not None for o in result.observations)


def test_lab_capture_counts_match_its_readme(parsed):
    lab = parsed["sc6-61_2022-10-19_anonymized.pcap"]
    assert lab.stats.frames == 8375
    assert lab.stats.malformed == {"bad_source_mac": 179}  # anonymised MACs with the multicast bit
    assert all(-99 <= o.rssi <= -33 and o.channel == 2417 for o in lab.observations)
    assert len({o.key for o in lab.observations}) <= 2061
    empty = parsed["sc6-61_2024-03-31_anonymized.pcap"]
    assert empty.stats.probes == 4203 and len({o.key for o in empty.observations}) == 22
    assert sum(1 for k in {(o.key, o.randomised) for o in empty.observations} if k[1]) == 14


def test_absurd_rssi_is_dropped_not_kept(parsed):
    s21 = parsed["S21Ultra-M_anonymized.pcap"]
    assert all(o.rssi is None or o.rssi < 0 for o in s21.observations)


def test_randomised_flag():
    assert is_randomised("da:a1:19:00:00:01") and is_randomised("02-00-00-00-00-01")
    assert not is_randomised("DC:FB:48:68:BE:E4") and not is_randomised("dcfb.4868.bee4")
    for bad in ("01:00:5e:00:00:01", "00:00:00:00:00:00", "dc:fb:48:68:be", "zz:fb:48:68:be:e4"):
        with pytest.raises(MacError):
            mac_bytes(bad)


def test_randomised_flag_reaches_observations():
    parser = ProbeParser(DeviceKeyer(SECRET))
    for mac, randomised in (("dc:fb:48:68:be:e4", False), ("da:fb:48:68:be:e4", True)):
        packet = RadioTap(present="dBm_AntSignal", dBm_AntSignal=-50) / Dot11(
            type=0, subtype=4, addr1="ff:ff:ff:ff:ff:ff", addr2=mac, addr3="ff:ff:ff:ff:ff:ff", SC=0x120) / Dot11ProbeReq()
        obs = parser.parse(packet, 1_700_000_000.0)
        assert obs.randomised is randomised and obs.rssi == -50 and obs.seq == 0x12


def test_non_probe_and_garbage_frames_are_counted_not_raised():
    parser = ProbeParser(DeviceKeyer(SECRET))
    assert parser.parse(RadioTap() / Dot11(type=0, subtype=8), 1.0) is None  # a beacon
    probe = RadioTap() / Dot11(type=0, subtype=4, addr2="dc:fb:48:68:be:e4") / Dot11ProbeReq()
    assert parser.parse(RadioTap(bytes(probe)[:14]), 1.0) is None  # cut inside the 802.11 header
    assert parser.stats.probes == 0 and parser.stats.frames == 2


def test_one_phones_rotating_macs_share_few_fingerprints(parsed):
    """baccichet: one phone per file (plus neighbours); many MACs, a handful of fingerprints."""
    phone = parsed["iPhone11-B_anonymized.pcap"].observations
    keys = {o.key for o in phone}
    fingerprints = {o.fingerprint for o in phone}
    assert len(keys) > 4 * len(fingerprints)


def test_missing_or_broken_capture_is_a_clear_error(tmp_path):
    parser = ProbeParser(DeviceKeyer(SECRET))
    with pytest.raises(WifiSourceError, match="does not exist"):
        list(replay(tmp_path / "none.pcap", parser))
    (tmp_path / "bad.pcap").write_bytes(b"this is not a capture at all")
    with pytest.raises(WifiSourceError, match="not a pcap"):
        list(replay(tmp_path / "bad.pcap", parser))
