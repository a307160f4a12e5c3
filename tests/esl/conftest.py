"""The simulated OpenEPaperLink access point (``kiosk.label_gateway.simulated_ap``) on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.label_gateway.simulated_ap import SimulatedAccessPoint as FakeAp
from provisioning.broker import free_port

MACS = {"0000021EA3B4C5D6", "0000021EA3B4C5D7", "0000021EA3B4C5D8"}


@pytest.fixture
def fake_ap() -> Iterator[FakeAp]:
    ap = FakeAp(free_port(), set(MACS))
    ap.start()
    yield ap
    ap.stop()


@pytest.fixture
def ap_port_unstarted() -> Iterator[FakeAp]:
    """An AP that is down until the test calls ``start``."""
    ap = FakeAp(free_port(), set(MACS))
    yield ap
    ap.stop()
