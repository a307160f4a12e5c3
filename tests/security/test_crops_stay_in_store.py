"""Issue 14, finding 9: raw face crops cannot leave the store.

* The cloud broker's generated config grants no ``local/`` topic to anyone: an edge box cannot
  publish a crop there, a guide screen cannot subscribe to one (even of its own store).
* A store's own broker grants them, and its bridge to the cloud never carries ``local/``; it does carry
  what the cloud sends the store's screens, retained as it was sent (the store's floor, issue 17).
* The edge box refuses ``local_crop`` unless its broker is declared store-local *and* is on a
  loopback/private address, from its config file and from a remote ``cfg/desired`` alike: the
  latter through the real path (the cloud's certificate, the generated broker, the box from its
  bundle), refused with the reason in ``cfg/reported`` while the old config runs on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.config import ConfigError, build
from kiosk.guide_screen.feed import crops_of_store
from protocol import topics
from protocol.codec import decode, encode
from protocol.device import ConfigDesired, ConfigReported, RemoteSettings
from protocol.facepack import get_pack
from provisioning import dynsec, fleet
from provisioning.broker_config import CONF_NAME, DYNSEC_NAME
from provisioning.signing import sign_pack

BRAND = "acme"
NOT_AUTHORIZED = "Not authorized"
PACK = "yunet-mbf"


def test_cloud_broker_grants_no_local_topic(home, bundle_of, broker, probe):
    assert "/local/" not in (home.broker_dir() / DYNSEC_NAME).read_text()
    edge = probe(bundle_of("s1", "edge-1"))
    assert edge.connect() == "Success"
    assert edge.publish(topics.store_local(BRAND, "s1", "crop", "edge-1"), b"{}") == NOT_AUTHORIZED
    kiosk = probe(bundle_of("s1", "kiosk-main"))
    assert kiosk.connect() == "Success"
    assert kiosk.subscribe(crops_of_store(BRAND, "s1")) == NOT_AUTHORIZED


def test_store_broker_carries_crops_and_its_bridge_never_does(home, bundle_of, store_broker, probe):
    conf = (home.broker_dir("s3") / CONF_NAME).read_text()
    bridged = [line for line in conf.splitlines() if line.startswith("topic ")]
    assert bridged and not any("local" in line or line.split()[1].endswith(f"{BRAND}/s3/#") for line in bridged), bridged
    kiosk = probe(bundle_of("s3", "kiosk-main"))
    edge = probe(bundle_of("s3", "edge-1"))
    assert kiosk.connect() == "Success" and edge.connect() == "Success"
    assert kiosk.subscribe(crops_of_store(BRAND, "s3")) == "Granted QoS 1"
    assert edge.publish(topics.store_local(BRAND, "s3", "crop", "edge-1"), b"{}") == "Success"
    assert kiosk.wait(lambda: kiosk.messages)


def test_the_cloud_s_floor_reaches_the_store_broker_retained_as_it_was_last_sent(home, bundle_of, broker, store_broker,
                                                                                 probe):
    """The store's floor (``StaffFloor``, retained on the cloud broker) crosses the bridge with its retain flag,
    every update of it, so a screen connecting to the store's broker later reads the latest floor."""
    floor = topics.guide_floor(BRAND, "s3")
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    watching = probe(bundle_of("s3", "kiosk-main"))
    assert cloud.connect() == "Success" and watching.connect() == "Success"
    assert watching.subscribe(floor) == "Granted QoS 1"
    for payload in (b'{"n": 1}', b'{"n": 2}'):
        assert cloud.publish(floor, payload, retain=True) in ("Success", "No matching subscribers")
        assert watching.wait(lambda payload=payload: any(m.payload == payload for m in watching.messages)), payload
    watching.close()
    later = probe(bundle_of("s3", "kiosk-main"))
    assert later.connect() == "Success" and later.subscribe(floor) == "Granted QoS 1"
    assert later.wait(lambda: later.messages)
    assert [(m.payload, m.retain) for m in later.messages] == [(b'{"n": 2}', True)]


@pytest.mark.parametrize(("extra", "error"), [
    ({}, "broker_scope"),  # the default: the cloud's broker
    ({"broker_scope": "store", "broker": "mqtt://203.0.113.7:1883"}, "public address"),
    ({"broker_scope": "store", "broker": "mqtts://8.8.8.8:8883"}, "public address"),
])
def test_box_refuses_crops_from_its_config_file_without_a_store_broker(extra, error):
    data = {"store": "s1", "device": "e1", "cameras": [{"id": "door", "source": "0"}], "local_crop": {"enabled": True}, **extra}
    with pytest.raises(ConfigError, match=error):
        build(data, "box.toml")


@pytest.mark.parametrize("broker", ["mqtt://127.0.0.1:1883", "mqtts://192.168.1.20:8883", "mqtt://localhost:1883"])
def test_box_takes_crops_with_a_store_local_broker(broker):
    config = build({"store": "s1", "device": "e1", "broker": broker, "broker_scope": "store", "cameras": [{"id": "door", "source": "0"}],
                    "local_crop": {"enabled": True}}, "box.toml")
    assert config.local_crop.enabled


@pytest.fixture
def pack_folder(tmp_path, models_dir) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for spec in get_pack(PACK).files:
        (folder / spec.name).symlink_to(models_dir / spec.name)
    return folder


def test_remote_config_cannot_turn_crops_on_through_the_cloud(home, bundle_of, broker, probe, pack_folder, tmp_path):
    fleet.create_device(home, "s1", "edge-crop", "edge", model_pack=PACK)
    bundle_dir, _ = fleet.write_bundle(home, "edge-crop", "s1")
    dynsec.sync(home, home.load(), dynsec.admin_url(home, home.load()))  # added live
    sign_pack(home, pack_folder, PACK)
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    reported_topic = topics.config_reported(BRAND, "s1", "edge-crop")
    assert cloud.subscribe(reported_topic) == "Granted QoS 1"
    box = subprocess.Popen(
        [sys.executable, "-m", "provisioning", "edge", "run", "--bundle", str(bundle_dir),
         "--source", "rtsp://127.0.0.1:1/door", "--state", str(tmp_path / "box.db")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ, INSTORE_MODELS=str(pack_folder)))
    desired_topic = topics.config_desired(BRAND, "s1", "edge-crop")
    try:
        reports = lambda: [decode(m.payload, ConfigReported) for m in cloud.messages if m.topic == reported_topic]  # noqa: E731
        assert cloud.wait(lambda: reports(), timeout=60), "the box never reported its config"
        current = reports()[-1]
        wanted = RemoteSettings.model_validate({**current.settings.model_dump(), "local_crop": {"enabled": True}})
        desired = ConfigDesired(brand=BRAND, store="s1", device="edge-crop", version=1,
                                ts=datetime.now(UTC), settings=wanted)
        assert cloud.publish(desired_topic, encode(desired)) in ("Success", "No matching subscribers")
        assert cloud.wait(lambda: any(r.refused_version == 1 for r in reports()), timeout=20), \
            [r.model_dump() for r in reports()]
        refused = next(r for r in reports() if r.refused_version == 1)
        assert "local_crop" in refused.error and refused.version == 0 and not refused.settings.local_crop.enabled
        assert box.poll() is None, "a refused config does not stop the box"
    finally:
        box.terminate()
        _, err = box.communicate(timeout=60)
    assert b"local_crop" in err
