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


def test_cloud_ingest_subscriptions_share_all_but_the_retained_states():
    assert topics.cloud_ingest() == [
        "instore/v1/+/+/+/evt/#", "instore/v1/+/+/+/telemetry", "instore/v1/+/+/guide/+/feedback",
        "instore/v1/+/+/guide/+/staff", "instore/v1/+/+/+/cmd/+/ack", "instore/v1/+/+/+/state",
    ]
    shared = topics.cloud_ingest("cdp")
    assert shared[:5] == [f"$share/cdp/{f}" for f in topics.cloud_ingest()[:5]]
    assert shared[5] == topics.ALL_DEVICE_STATES
    with pytest.raises(topics.TopicError):
        topics.cloud_ingest("a/b")


def test_the_floor_is_one_retained_topic_a_store():
    assert topics.guide_floor("demo", "s1") == "instore/v1/demo/s1/guide/all/floor"
    with pytest.raises(topics.TopicError):
        topics.guide_floor("demo", "s/#")


def test_label_and_crop_topics():
    assert topics.label_command("demo", "s1", "L-7") == "instore/v1/demo/s1/esl/L-7/cmd"
    assert topics.label_commands_of_store("demo", "s1") == "instore/v1/demo/s1/esl/+/cmd"
    assert topics.local_crop("demo", "s1", "edge1") == "instore/v1/demo/s1/local/crop/edge1"
    assert topics.local_crops_of_store("demo", "s1") == "instore/v1/demo/s1/local/crop/+"
    for bad in (lambda: topics.label_command("demo", "s1", "L/#"), lambda: topics.local_crop("demo", "s1", "+")):
        with pytest.raises(topics.TopicError):
            bad()


@pytest.mark.parametrize(("topic", "message"), [
    (topics.arrival("b", "s", "e1"), "arrival"),
    (topics.presence("b", "s", "e1"), "presence"),
    (topics.footfall("b", "s", "e1"), "footfall"),
    (topics.device_state("b", "s", "e1"), "state"),
    (topics.telemetry("b", "s", "e1"), "telemetry"),
    (topics.guide_feedback("b", "s", "screen-1"), "feedback"),
    (topics.guide_staff("b", "s", "screen-1"), "staff_sign"),
    ("instore/v1/b/s/guide/screen-1/other", None),
    (topics.device_command_ack("b", "s", "e1", "erase"), "command_ack"),
    (topics.device_command("b", "s", "e1", "erase"), None),
    (topics.guide_card("b", "s"), None),
    (topics.guide_floor("b", "s"), None),  # the cloud's, to the screens: it ingests none
    ("instore/v1/b/s/e1/evt/other", None),
])
def test_each_topic_names_its_message_kind(topic, message):
    assert topics.parse(topic).message == message
    assert message is None or message in topics.MESSAGES
