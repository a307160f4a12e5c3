"""The label registry and the commands built from it: redraw a product's labels, flash the labels
of a member's recommended products."""

from __future__ import annotations

import pytest

from cloud.pricing.registry import Label, LabelBindingError, LabelRegistry, arrival_flash_commands, redraw_commands
from protocol.codec import decode, encode
from protocol.esl import LabelCommand, LabelProduct
from protocol.messages import now
from protocol.topics import TopicError, label_command, label_commands_of_store

REGISTRY = LabelRegistry([
    Label(label_id="L1", store="s1", sku="SK-1001", tag_type="epd29_bwr"),
    Label(label_id="L2", store="s1", sku="SK-1001", tag_type="epd42_bwr"),  # end of aisle
    Label(label_id="L3", store="s1", sku="SK-2040", tag_type="epd154_bw"),
    Label(label_id="L1", store="s2", sku="SK-2040", tag_type="epd29_bwr"),
])


def test_arrival_flashes_the_labels_of_the_top_recommended_products_in_that_store():
    commands = arrival_flash_commands(REGISTRY, "demo", "s1", ["SK-9999", "SK-2040", "SK-1001"], now(),
                                      reason="王女士到店", top=2)
    assert [(topic, c.label) for topic, c in commands] == [
        ("instore/v1/demo/s1/esl/L3/cmd", "L3"), ("instore/v1/demo/s1/esl/L1/cmd", "L1"),
        ("instore/v1/demo/s1/esl/L2/cmd", "L2"),
    ]
    for _, command in commands:
        assert command.flash is not None and command.product is None and command.ttl_s <= 300
        assert decode(encode(command), LabelCommand) == command


def test_a_price_change_redraws_every_label_of_the_product():
    product = LabelProduct(sku="SK-1001", name="修护精华露 50ml", price=1280, member_price=1088)
    commands = redraw_commands(REGISTRY, "demo", "s1", product, now(), reason="markdown")
    assert sorted(c.label for _, c in commands) == ["L1", "L2"]
    assert all(c.product == product for _, c in commands)


def test_binding_rules():
    registry = LabelRegistry(REGISTRY.of_store("s1"))
    with pytest.raises(LabelBindingError, match="rebind"):
        registry.add(Label(label_id="L1", store="s1", sku="SK-2040", tag_type="epd29_bwr"))
    assert registry.rebind("s1", "L1", "SK-2040").sku == "SK-2040"
    registry.remove("s1", "L3")
    with pytest.raises(LabelBindingError):
        registry.get("s1", "L3")


def test_label_topics_and_command_validation():
    assert label_commands_of_store("demo", "s1") == "instore/v1/demo/s1/esl/+/cmd"
    assert label_command("demo", "s1", "L-7") == "instore/v1/demo/s1/esl/L-7/cmd"
    with pytest.raises(TopicError):
        label_command("demo", "s1", "L/#")
    with pytest.raises(ValueError, match="needs a product"):
        LabelCommand(command_id="c" * 12, ts=now(), brand="demo", store="s1", label="L1", ttl_s=60)
    with pytest.raises(ValueError, match="member_price"):
        LabelProduct(sku="a", name="b", price=10, member_price=12)
