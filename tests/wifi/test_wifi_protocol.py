"""The device key the cloud and the edge share, and the Wi-Fi messages on the codec."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from protocol.codec import DecodeError, decode, encode
from protocol.wifi import MacError, WifiFootfall, WifiPresence, device_key

SECRET = b"brand-secret-for-tests-0123456789"
T = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)


def test_device_key_is_hmac_sha256_of_the_mac_bytes_in_any_spelling():
    expected = hmac.new(SECRET, bytes.fromhex("dcfb4868bee4"), hashlib.sha256).hexdigest()
    for spelling in ("dc:fb:48:68:be:e4", "DC-FB-48-68-BE-E4", "dcfb.4868.bee4", "dcfb4868bee4"):
        assert device_key(spelling, SECRET) == expected
    assert device_key("dc:fb:48:68:be:e4", SECRET + b"x") != expected


def test_device_key_refuses_randomised_multicast_and_weak_secrets():
    with pytest.raises(MacError, match="randomised"):
        device_key("da:fb:48:68:be:e4", SECRET)
    with pytest.raises(MacError) as err:
        device_key("01:00:5e:00:00:01", SECRET)
    assert "01:00:5e" not in str(err.value)
    with pytest.raises(ValueError, match="at least"):
        device_key("dc:fb:48:68:be:e4", b"short")


def test_messages_round_trip_and_reject_unknown_fields():
    presence = WifiPresence(event_id="e" * 16, ts=T, brand="b", store="s", device="d",
                            device_key=device_key("dc:fb:48:68:be:e4", SECRET), phase="enter",
                            first_seen=T, last_seen=T, dwell_s=60, frames=3, rssi_max=-50, rssi_median=-55)
    assert decode(encode(presence), WifiPresence) == presence
    footfall = WifiFootfall(event_id="f" * 16, ts=T, brand="b", store="s", device="d", minute=T, people=3,
                            passing=4, visits_started=1, distinct_macs=12, background=2, probes=40)
    assert decode(encode(footfall), WifiFootfall) == footfall
    with pytest.raises(DecodeError) as err:
        decode(encode(footfall)[:-1] + b', "mac": "x"}', WifiFootfall)
    assert err.value.field == "mac"
    with pytest.raises(DecodeError) as err:
        decode(encode(presence).replace(presence.device_key.encode(), b"dc:fb:48:68:be:e4"), WifiPresence)
    assert err.value.field == "device_key"
