"""Issue 18: Wi-Fi fusion by likelihood ratio. A member's registered phone in the store raises a
borderline (uncertain) face to the member, by the likelihood ratio that labelled visits give the
phone, never below the pack's uncertain floor; the fused posterior and its reasons go on the visit
and the card. Through a real Mosquitto: the phone first, then the face; the face first, then the
phone (every screen gets the member card in place of the question); a face under the floor stays
a visitor whatever the phone says."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud.arrivals.fusion import Model, decide, estimate, prior_slope
from cloud.cdp.members import Member
from cloud.faces import enrolled
from cloud.faces.matching import Match, uncertain_floor
from protocol import topics, transport
from protocol.embedding import Embedding
from protocol.messages import new_id, now
from tests.cloud.probes import probe
from tests.cloud.test_cloud_ingest import BRAND, Guide, _stats_when, edge, guide, store_id  # noqa: F401
from tests.cloud.test_cloud_wifi import MAC, _presence, _visits_when, wifi_secret  # noqa: F401

THRESHOLD, FLOOR = 0.49, 0.458


def _uncertain(score: float) -> Match:
    wang = Member(id="m1", name="王芳", phone=None, gender="female", tier="金卡", tags=[], categories=[],
                  face_consent=True, created=datetime.now(UTC))
    return Match(None, score, "uncertain", candidate=wang, threshold=THRESHOLD, floor=FLOOR)


def test_the_likelihood_ratio_is_estimated_from_labelled_visits_and_never_goes_below_the_floor() -> None:
    b0 = prior_slope(THRESHOLD, FLOOR)
    assert b0 == pytest.approx(math.log(10) / (THRESHOLD - FLOOR))
    prior = estimate([], b0)
    assert math.exp(prior.log_lr("present")) == pytest.approx(2.5) and prior.log_lr(None) == 0.0
    # with the priors alone a phone lowers the bar by ln 2.5 / b0, about 40% of the band
    near, mid = THRESHOLD - 0.3 * (THRESHOLD - FLOOR), THRESHOLD - 0.6 * (THRESHOLD - FLOOR)
    assert decide(prior, _uncertain(near), "present").match.reason == "wifi"
    assert decide(prior, _uncertain(mid), "present").match.reason == "uncertain"

    # labels over the band: phones of genuine candidates present 30 times in 40, impostors' once in 40
    genuine_at, impostor_at = (-0.025, -0.015, -0.005, 0.005), (-0.03, -0.02, -0.01, 0.0)
    rows = ([(genuine_at[i % 4], True, "present" if i < 30 else "absent") for i in range(40)]
            + [(impostor_at[i % 4], False, "present" if i == 0 else "absent") for i in range(40)])
    learned = estimate(rows, b0)
    assert learned.present_genuine == pytest.approx(31 / 42) and learned.present_impostor == pytest.approx(2 / 45)
    assert learned.phone_labels == 80 and learned.slope > 0
    raised = decide(learned, _uncertain(mid), "present")
    assert raised.match.reason == "wifi" and raised.match.member.id == "m1" and raised.match.candidate is None
    assert raised.confidence > decide(learned, _uncertain(mid), None).confidence
    assert any("登记手机在店" in r for r in raised.reasons)
    assert decide(learned, _uncertain(FLOOR - 0.001), "present").match.reason == "uncertain", "never below the floor"
    assert decide(learned, _uncertain(mid), "absent").match.reason == "uncertain"
    member = Match(_uncertain(0.6).candidate, 0.6, "member", threshold=THRESHOLD, floor=FLOOR)
    assert decide(learned, member, "absent").match.reason == "member", "an absent phone never demotes"

    # phones that impostors' candidates carry as often as genuine ones are worth nothing
    useless = estimate([(0.0, True, "present")] * 20 + [(-0.02, False, "present")] * 20, b0)
    assert abs(useless.log_lr("present")) < 0.3
    assert decide(useless, _uncertain(mid), "present").match.reason == "uncertain"
    assert decide(Model(0.0, 0.0, 0.9, 0.01), _uncertain(mid), "present").match.reason == "uncertain", (
        "a pack without an uncertain band (slope 0) is never raised")


def test_a_registered_phone_raises_a_borderline_face_to_the_member_either_order(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, face_engine, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    pack = face_engine.pack
    people = {}
    for name, phone, mac, folder in (("王芳", "13800138001", MAC, "deepface_id01"),
                                     ("张伟", "13800138002", "3c:22:fb:12:34:57", "deepface_id02")):
        member = client.post("/v1/members", json={"name": name, "phone": phone, "gender": "female",
                                                  "consent": {"face": True}}).json()["id"]
        photo = sorted((faces_dir / folder).glob("*.jpg"))[0].read_bytes()
        assert client.post(f"/v1/members/{member}/faces", files={"image": ("f.jpg", photo, "image/jpeg")}).status_code == 201
        key = client.post(f"/v1/members/{member}/devices", json={"mac": mac}).json()["device_key"]
        [template] = enrolled.member_vectors(runtime.db, member, pack.recogniser.embedding_space)
        people[name] = (member, key, template)
    floor = uncertain_floor(pack)
    close = pack.match_threshold - 0.2 * (pack.match_threshold - floor)  # in the band, near the bar
    base = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id)

    def face(name: str, score: float, seed: int) -> None:
        arrival = base.model_copy(update={"event_id": new_id(), "ts": now(), "track_id": f"t{seed}",
                                          "embedding": Embedding.from_vector(probe(people[name][2], score, seed))})
        transport.publish(edge, topics.arrival(BRAND, store_id, "edge-01"), arrival).wait_for_publish(5)

    def phone_enters(name: str) -> None:
        transport.publish(edge, topics.presence(BRAND, store_id, "wifi-01"),
                          _presence(store_id, "enter", key=people[name][1])).wait_for_publish(5)

    # the phone first, then the face: one member card, with the fusion's evidence
    phone_enters("王芳")
    _visits_when(client, store_id, lambda v: len(v) == 1)
    face("王芳", close, 1)
    card = guide.next()
    wang = people["王芳"][0]
    assert card.member is not None and card.member.member_id == wang and card.candidate is None
    assert card.evidence is not None and card.evidence.phone == "present" and card.evidence.fused > 0.5
    assert card.confidence == pytest.approx(close, abs=1e-3)
    [visit] = _visits_when(client, store_id, lambda v: v and v[0]["signals"] == "face+wifi")
    assert (visit["member_id"], visit["phone"], visit["card_id"]) == (wang, "present", card.card_id)
    assert visit["fused_confidence"] == pytest.approx(card.evidence.fused) and "登记手机在店" in visit["fusion"]

    # the face first (asked), then the phone: the question is replaced by the member card on every screen
    face("张伟", close, 2)
    asked = guide.next()
    zhang = people["张伟"][0]
    assert asked.member is None and asked.candidate.member_id == zhang
    phone_enters("张伟")
    raised = guide.next()
    assert raised.visit_id == asked.visit_id and raised.member.member_id == zhang
    assert raised.evidence.phone == "present"
    row = runtime.db.one("SELECT member_id, signals, phone, corrected_reason, card_id FROM visits WHERE id = ?",
                         (asked.visit_id,))
    assert row == {"member_id": zhang, "signals": "face+wifi", "phone": "present", "corrected_reason": "wifi",
                   "card_id": raised.card_id}
    assert len(runtime.db.rows("SELECT id FROM visits WHERE store = ?", (store_id,))) == 2, "the enter joined it"
    assert _stats_when(client, lambda s: s["wifi_promoted"] == 2)["wifi_promoted"] == 2

    # under the floor the phone changes nothing: a visitor, no candidate
    face("王芳", floor - 0.03, 3)
    stranger = guide.next()
    assert stranger.member is None and stranger.candidate is None and stranger.evidence is None
