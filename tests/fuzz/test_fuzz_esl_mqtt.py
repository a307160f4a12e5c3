"""Malformed and hostile label commands on the topics a store's ESL gateway subscribes to
(``esl/+/cmd``), through a real Mosquitto to the real gateway and the simulated OpenEPaperLink
access point: every command is either carried out or rejected under a named reason (never the
catch-all ``internal_error``), the AP never gets a request it refuses as malformed, and a valid
command sent afterwards is still drawn and flashed.

Schema-shaped commands are addressed to this store and to a label the AP knows, one it does
not know and one missing from the labels file, so they reach rendering (product names of any
Unicode, QR payloads of any length), the AP calls and the expiry check. The brand is this
test's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.label_gateway.ap import AccessPoint
from kiosk.label_gateway.gateway import EslGateway, LabelBook
from kiosk.label_gateway.simulated_ap import SimulatedAccessPoint
from protocol import transport
from protocol.codec import encode
from protocol.esl import ARRIVAL_FLASH, LabelCommand, LabelProduct
from protocol.messages import Feedback, new_id, now
from protocol.topics import label_command
from tests.fuzz.jsonish import dump, from_json_schema
from tests.fuzz.mqttfuzz import FIXED, expected_rejects, grown, junk, new_brand, sender, shaped, wait_for
from tests.netutil import free_port

STORE = "fz-store"
#: Paired with the AP; hung but not paired (the AP refuses it); not in the labels file.
PAIRED, UNPAIRED, UNKNOWN = "L-milk", "L-gone", "L-none"
BOOK = LabelBook.model_validate({"labels": [
    {"label": PAIRED, "mac": "0000021EA3B4C5D6", "tag_type": "epd29_bwr"},
    {"label": UNPAIRED, "mac": "0000AAAAAAAAAAAA", "tag_type": "epd42_bwr"},
]})
#: Why the worker may refuse a command that reached it; ``internal_error`` is not among them.
WORKER_REASONS = {"unknown_label", "render", "expired", "ap_refused"}


@pytest.fixture
def gateway(mosquitto) -> Iterator[tuple[EslGateway, SimulatedAccessPoint]]:
    ap = SimulatedAccessPoint(free_port(), {"0000021EA3B4C5D6"})
    ap.start()
    gw = EslGateway(transport.BrokerUrl.parse(mosquitto.url), new_brand(), STORE, AccessPoint(ap.url, timeout_s=2),
                    BOOK, backoff_max_s=0.5)
    gw.start()
    assert gw.subscribed.wait(10)
    yield gw, ap
    gw.stop()
    ap.stop()


def hostile(brand: str, label: str) -> list[bytes]:
    """Junk, schema-shaped commands from anywhere, addressed here (now, and at any time), a
    valid command for another store, a valid message of another type and a command whose expiry
    is past the year 9999."""
    # A command must draw or flash: give it a schema-shaped product so most reach the worker.
    here = dict(brand=brand, store=STORE, label=label, product=from_json_schema(LabelProduct.model_json_schema()))
    shapes = shaped(LabelCommand, 4) + shaped(LabelCommand, 10, **here, ts=now().isoformat()) + shaped(
        LabelCommand, 4, **here)
    elsewhere = LabelCommand(command_id=new_id(), ts=now(), brand=brand, store="other-store", label=label, ttl_s=60,
                             flash=ARRIVAL_FLASH)
    feedback = Feedback(feedback_id=new_id(), card_id=new_id(), visit_id=new_id(), brand=brand, store=STORE,
                        screen="main", action="greeted", ts=now())
    doomsday = elsewhere.model_dump(mode="json") | dict(store=STORE, ts="9999-12-31T23:59:00+00:00")
    return FIXED + junk(6) + [dump(data) for data in shapes] + [encode(elsewhere), encode(feedback), dump(doomsday)]


def test_every_label_command_is_carried_out_or_rejected_by_reason(gateway, mosquitto) -> None:
    gw, ap = gateway
    stats = gw.stats
    before = dict(stats.rejected)
    expected, accepted = {}, 0
    with sender(mosquitto.url) as send:
        for label in (PAIRED, UNPAIRED, UNKNOWN):
            payloads = hostile(gw.brand, label)
            reasons, ready = expected_rejects(
                payloads, LabelCommand, lambda c, label=label: (c.brand, c.store, c.label) == (gw.brand, STORE, label),
                undecodable="bad_message", elsewhere="wrong_topic")
            expected = {k: expected.get(k, 0) + reasons.get(k, 0) for k in {*expected, *reasons}}
            accepted += len(ready)
            send(label_command(gw.brand, STORE, label), payloads)
        assert accepted, "schema-shaped commands reach the gateway's worker"
        total = accepted + sum(expected.values())

        def settled() -> bool:
            return stats.received == total and stats.carried_out + sum(grown(before, stats.rejected).values()) == total

        wait_for(settled, timeout=60, what="the gateway")
        new = grown(before, stats.rejected)
        assert {k: new.get(k, 0) for k in expected} == expected, new
        assert set(new) - set(expected) <= WORKER_REASONS, new
        assert not ap.errors, f"the gateway sent the AP a request it could not parse: {ap.errors[:3]}"

        product = LabelProduct(sku="F-2001", name="鲜牛奶 950ml", price=19.8, member_price=13.9)
        valid = LabelCommand(command_id=new_id(), ts=now(), brand=gw.brand, store=STORE, label=PAIRED, ttl_s=60,
                             product=product, flash=ARRIVAL_FLASH)
        drawn, flashed = stats.drawn, stats.flashed
        send(label_command(gw.brand, STORE, PAIRED), [encode(valid)])
        wait_for(lambda: (stats.drawn, stats.flashed) == (drawn + 1, flashed + 1), what="the valid command")
    assert grown(before, stats.rejected) == new
