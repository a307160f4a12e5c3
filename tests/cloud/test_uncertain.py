"""Issue 18: a face scored in the band just under the pack's threshold (above the score at which 1%
of strangers pass) is neither shown as the member nor dropped: the card carries only the question
"可能是 王女士？请确认" and the enrolled photo, never the profile; the assistant's 是 turns the visit
into a member visit and 不是 keeps it a visitor visit, each a labelled outcome in match_labels."""

from __future__ import annotations

import json

from cloud.arrivals import feedback
from cloud.clock import iso, utcnow
from cloud.faces import enrolled
from cloud.faces.matching import Matcher, uncertain_floor
from protocol.codec import encode
from tests.cloud.probes import Probes, probe

BRAND, STORE, DEVICE = "demo", "s1", "edge-01"


def test_a_borderline_face_asks_and_the_answer_is_a_labelled_outcome(start_cloud, make_arrival, faces_dir,
                                                                      face_engine) -> None:
    client, runtime = start_cloud()
    member_id = client.post("/v1/members", json={"name": "王芳", "phone": "+8613800138000", "gender": "female",
                                                  "tier": "金卡会员", "consent": {"face": True}}).json()["id"]
    photo = faces_dir / "deepface_id01" / "img2.jpg"
    assert client.post(f"/v1/members/{member_id}/faces",
                       files={"image": ("f.jpg", photo.read_bytes(), "image/jpeg")}).status_code == 201
    pack = face_engine.pack
    [template] = enrolled.member_vectors(runtime.db, member_id, pack.recogniser.embedding_space)
    assert uncertain_floor(pack) < pack.match_threshold, "the default pack has an uncertain band"
    probes = Probes(runtime, pack, template, make_arrival(photo, brand=BRAND, store=STORE, device=DEVICE))
    arrive = probes.arrive

    def answer(card, action: str) -> None:
        assert probes.answer(card, action) == ("confirmed" if action == "confirmed" else "stored")

    def visit(card):
        return runtime.db.one("SELECT member_id, corrected_member_id, corrected_reason FROM visits WHERE id = ?",
                              (card.visit_id,))

    band = (uncertain_floor(pack) + pack.match_threshold) / 2
    first = arrive(band, 1)
    assert first.member is None, "never the profile"
    assert first.candidate is not None and first.candidate.member_id == member_id
    assert first.candidate.prompt == "可能是 王女士？请确认"
    assert first.candidate.enrolled_photo, "the enrolled thumbnail beside the live crop"
    assert first.recommendations == [] and "王芳" not in first.script
    assert visit(first) == {"member_id": None, "corrected_member_id": member_id, "corrected_reason": "uncertain"}
    answer(first, "confirmed")
    assert visit(first)["member_id"] == member_id

    second = arrive(band, 2)
    answer(second, "rejected")
    assert visit(second)["member_id"] is None and visit(second)["corrected_reason"] == "rejected:小李"
    got = {(r["visit_id"], r["label"], r["member_id"]) for r in feedback.labels(runtime.db, STORE)}
    assert got == {(first.visit_id, "confirmed", member_id), (second.visit_id, "rejected", member_id)}

    stranger = arrive(uncertain_floor(pack) - 0.02, 3)
    assert stranger.member is None and stranger.candidate is None
    assert "candidate" not in json.loads(encode(stranger)), "older screens still decode a visitor card"
    matcher = Matcher(runtime.index, runtime.db, pack)
    sure = matcher.match(probe(template, pack.match_threshold + 0.01, 4), pack.id)
    assert (sure.reason, sure.candidate) == ("member", None) and sure.member.id == member_id

    # per-store calibration: one "不是本人" at this store demands 0.01 more there; what it holds back is asked
    runtime.db.execute("INSERT INTO match_labels (visit_id, label, member_id, score, brand, store, device, feedback_id, "
                       "ts) VALUES ('v-wrong', 'not_this_person', ?, 0.6, ?, ?, ?, 'f-wrong', ?)",
                       (member_id, BRAND, STORE, DEVICE, iso(utcnow())))
    matcher = Matcher(runtime.index, runtime.db, pack)
    close_call = probe(template, pack.match_threshold + 0.005, 5)
    assert matcher.match(close_call, pack.id, STORE).reason == "uncertain"
    assert matcher.match(close_call, pack.id, "s2").reason == "member"
