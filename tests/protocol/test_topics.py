import pytest

from protocol import topics


def test_builders_and_parse_agree():
    topic = topics.arrival("demo", "store1", "edge1")
    assert topic == "instore/v1/demo/store1/edge1/evt/arrival"
    info = topics.parse(topic)
    assert (info.brand, info.store, info.device, info.kind) == ("demo", "store1", "edge1", "evt/arrival")
    assert topics.parse(topics.guide_card("demo", "store1")).device == "guide"


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "s 1", "-lead", "x" * 65])
def test_ids_that_would_widen_a_topic_are_refused(bad):
    with pytest.raises(topics.TopicError):
        topics.arrival("demo", bad, "edge1")


def test_reserved_device_names():
    with pytest.raises(topics.TopicError, match="reserved"):
        topics.arrival("demo", "s1", "guide")


@pytest.mark.parametrize("bad", ["other/v1/demo/s1/e1/state", "instore/v1/demo", "instore/v1/demo/s+/e1/state"])
def test_parse_rejects_foreign_topics(bad):
    with pytest.raises(topics.TopicError):
        topics.parse(bad)


def test_shared_subscription():
    assert topics.shared(topics.ALL_DEVICE_EVENTS, "cdp") == "$share/cdp/instore/v1/+/+/+/evt/#"
