"""A running edge box switches model packs on a ``cmd/pack`` command over the real TLS broker:
an unsigned, tampered or mis-pinned pack is refused with the reason and the old pack keeps
producing arrivals; a signed one is swapped in between frames, reported and acknowledged; a
re-sent command is acknowledged again without a second switch; a restarted box runs the pack it
was switched to; rolling back is the same command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocol import topics
from protocol.codec import decode
from protocol.commands import PACK, CommandAck, PackCommand
from protocol.device import ConfigReported
from protocol.facepack import get_pack
from protocol.facepack.signing import manifest_digest, read_signed
from protocol.messages import Arrival, new_id
from provisioning import fleet
from provisioning.signing import sign_pack

OLD, NEW = "yunet-mbf", "scrfd500m-mbf"


@pytest.fixture
def packs(tmp_path, models_dir) -> Path:
    """Two packs side by side, ``<models>/<pack>/``, their files linked from the shared model folder."""
    root = tmp_path / "models"
    for pack in (OLD, NEW):
        (root / pack).mkdir(parents=True)
        for spec in get_pack(pack).files:
            (root / pack / spec.name).symlink_to(models_dir / spec.name)
    return root


def _tamper(path: Path) -> bytes:
    """Replace a linked model file by a copy with its last bit flipped; the original bytes."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    return data


def test_box_switches_packs_on_command_and_refuses_bad_ones(
        home, bundle_of, broker, probe, reload_acls, packs, camera, tmp_path):
    fleet.create_device(home, "s1", "edge-roll", "edge", model_pack=OLD)
    bundle_dir, _ = fleet.write_bundle(home, "edge-roll", "s1")
    reload_acls()
    sign_pack(home, packs / OLD, OLD)
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    for topic in (topics.shared(f"{topics.ROOT}/+/+/+/cmd/+/ack", "cdp"), topics.shared(topics.ALL_DEVICE_EVENTS, "cdp"),
                  f"{topics.ROOT}/+/+/+/cfg/reported"):
        assert cloud.subscribe(topic) == "Granted QoS 1"

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "provisioning", "edge", "run", "--bundle", str(bundle_dir), "--source", str(camera),
             "--fps", "4", "--revisit-window", "0", "--state", str(tmp_path / "box.db")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=dict(os.environ, INSTORE_MODELS=str(packs)))

    def stop(box: subprocess.Popen) -> None:
        box.terminate()
        _, err = box.communicate(timeout=60)
        assert box.returncode == 0, err[-3000:]

    edge = start()
    acked: dict[str, CommandAck] = {}

    def arrivals() -> list[Arrival]:
        return [decode(m.payload, Arrival) for m in list(cloud.messages) if m.topic.endswith("/evt/arrival")]

    def command(pack: str, manifest: str | None = None) -> CommandAck:
        """Publish a pack command (again every 2 s until the box, once subscribed, answers)."""
        sent = PackCommand(command_id=new_id(), brand="acme", store="s1", device="edge-roll", pack_id=pack,
                           manifest_sha256=manifest, ts=datetime.now(UTC))
        deadline = time.monotonic() + 60
        while sent.command_id not in acked:
            assert edge.poll() is None and time.monotonic() < deadline, "no ack"
            assert cloud.publish(topics.device_command("acme", "s1", "edge-roll", PACK), sent.model_dump_json().encode()) \
                == "Success"
            cloud.wait(lambda: any(m.topic.endswith("/cmd/pack/ack") and decode(m.payload, CommandAck).command_id
                                   == sent.command_id for m in list(cloud.messages)), timeout=2)
            acked.update((a.command_id, a) for a in (decode(m.payload, CommandAck) for m in list(cloud.messages)
                                                        if m.topic.endswith("/cmd/pack/ack")))
        return acked[sent.command_id]

    def arrivals_after(count: int, pack: str) -> None:
        seen = len(arrivals())
        assert cloud.wait(lambda: sum(a.model_pack == pack for a in arrivals()[seen:]) >= count, timeout=60), \
            f"no arrivals of {pack}: {[a.model_pack for a in arrivals()[seen:]]}"

    try:
        arrivals_after(1, OLD)
        refused = command(NEW)
        assert not refused.ok and "is unsigned: no pack.signed.json" in refused.detail and OLD in refused.detail

        sign_pack(home, packs / NEW, NEW)
        victim = packs / NEW / get_pack(NEW).detector.file.name
        original = _tamper(victim)
        refused = command(NEW)
        assert not refused.ok and f"{victim.name} was tampered with" in refused.detail
        victim.unlink()
        victim.write_bytes(original)

        refused = command(NEW, manifest="0" * 64)
        assert not refused.ok and "another build of the pack" in refused.detail
        arrivals_after(2, OLD)  # after three refusals the old pack still runs

        digest = manifest_digest(read_signed(packs / NEW).manifest)
        switched = command(NEW, digest)
        assert switched.ok and re.search(rf"switched from {OLD} to {NEW} in \d+ ms", switched.detail), switched.detail
        arrivals_after(2, NEW)
        reports = [decode(m.payload, ConfigReported) for m in list(cloud.messages) if m.topic.endswith("/cfg/reported")]
        assert reports[-1].model_pack == NEW

        again = command(NEW, digest)
        assert again.ok and again.detail.startswith(f"already running {NEW}")
        stop(edge)
        edge = start()  # the box remembers the pack it was switched to
        arrivals_after(2, NEW)
        back = command(OLD)
        assert back.ok and f"switched from {NEW} to {OLD}" in back.detail
        arrivals_after(2, OLD)
    finally:
        stop(edge)
