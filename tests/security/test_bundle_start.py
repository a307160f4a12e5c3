"""A guide screen starts from nothing but its install bundle and shows its store's cards over TLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from protocol import topics
from protocol.codec import encode
from protocol.messages import GuideCard, MemberSummary, new_id, now
from provisioning import fleet

BRAND = "acme"


def test_kiosk_runs_from_its_bundle(home, bundle_of, broker, probe, tmp_path):
    kiosk_bundle = home.bundle_dir("s1", "kiosk-main")
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisioning", "kiosk", "--bundle", str(kiosk_bundle), "--exit-after", "30",
         "--screenshot", str(tmp_path / "screen.png")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1"),
    )
    try:
        assert json.loads(proc.stdout.readline())["event"] == "ready"
        cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
        assert cloud.connect() == "Success"
        card = GuideCard(
            card_id=new_id(), visit_id=new_id(), arrival_event_id=new_id(), brand=BRAND, store="s1", ts=now(),
            arrival_ts=now(), confidence=0.8, script="王女士您好", expires_at=now() + timedelta(minutes=2),
            member=MemberSummary(member_id="m1", name="王芳", title="王女士", tier="金卡会员"),
        )
        assert cloud.publish(topics.guide_card(BRAND, "s1"), encode(card)) in ("Success", "No matching subscribers")
        shown = json.loads(proc.stdout.readline())
        assert shown["event"] == "card_shown" and shown["card_id"] == card.card_id
    finally:
        proc.terminate()
        proc.wait(20)


def test_kiosk_refuses_another_roles_bundle(home):
    result = subprocess.run(
        [sys.executable, "-m", "provisioning", "kiosk", "--bundle", str(home.bundle_dir("s1", "edge-1"))],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )
    assert result.returncode == 2 and "not a guide screen" in result.stderr
