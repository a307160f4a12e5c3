"""Issue 18: several photos per member in the live gallery, bounded learning from confirmed arrivals,
and a pack switch that keeps the gallery (members re-embedded from their thumbnails before boxes move)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cloud.cdp import erasure, members
from cloud.faces import enrolled, learning
from cloud.faces.gallery import FaceIndex
from cloud.faces.matching import Matcher, uncertain_floor
from cloud.fleet import devices
from protocol.facepack import get_pack
from protocol.facepack.engine import FaceEngine
from protocol.messages import new_id, now
from tests.cloud.probes import Probes, probe

BRAND, STORE, DEVICE = "demo", "s1", "edge-01"


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _enrol(client, name: str, phone: str, photos, *, consent: bool = True) -> str:
    member_id = client.post("/v1/members", json={"name": name, "phone": phone, "gender": "female",
                                                  "consent": {"face": consent}}).json()["id"]
    for photo in photos:
        made = client.post(f"/v1/members/{member_id}/faces", files={"image": ("f.jpg", photo.read_bytes(), "image/jpeg")})
        assert made.status_code == 201, made.text
    return member_id


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_a_member_with_several_photos_is_scored_as_the_mode_says(mode) -> None:
    rng = np.random.default_rng(3)
    index = FaceIndex("space", 64, template_mode=mode)
    photos = [_unit(rng.normal(size=64)) for _ in range(3)]
    for i, v in enumerate(photos):
        index.add("alice", v, face_id=f"a{i}")
    index.add("bob", _unit(rng.normal(size=64)), face_id="b0")
    face = _unit(photos[0] + 0.5 * photos[1])
    found = index.search(face)
    mean = _unit(np.sum(photos, axis=0))
    expected = float(mean @ face) if mode == "mean" else max(float(v @ face) for v in photos)
    assert found is not None and found.member_id == "alice" and found.templates == 3
    assert found.score == pytest.approx(expected, abs=1e-5)


def test_a_pack_judges_several_photos_by_its_own_template_calibration() -> None:
    for pack_id in ("scrfd500m-mbf", "yunet-mbf", "yunet-dlib"):
        pack = get_pack(pack_id)
        assert pack.templates is not None, f"{pack_id}: bench/openset.py's two-photo calibration is in the manifest"
        assert pack.bounds(1) == (pack.match_threshold, pack.match_margin)
        assert pack.bounds(3) == (pack.templates.threshold, pack.templates.margin)


def test_at_most_five_faces_per_person_the_oldest_learned_then_the_weakest_go(db) -> None:
    member = members.add_member(db, name="李娜", phone="13900139000", gender="female", tier="gold", tags=[],
                                categories=[], face_consent=True, store=STORE)
    rng = np.random.default_rng(5)

    def add(det: float | None, source: enrolled.Source = "enrolment") -> str:
        return enrolled.add_face(db, member_id=member.id, vector=rng.normal(size=8), embedding_space="s",
                                 pack_id="p", det_score=det, source=source, visit_id=new_id() if det is None else None).id

    faces = [add(0.7), add(0.9), add(0.8), add(None, "arrival"), add(None, "arrival")]
    epoch = enrolled.catch_up(db, "s")[0]
    newest = add(0.6)  # the newest stays even though the detector trusted it least
    kept = {f.id for f in enrolled.catch_up(db, "s")[1]}
    assert kept == {*faces[:3], faces[4], newest}, "the oldest learned face went first"
    assert enrolled.catch_up(db, "s")[0] == epoch + 1, "every process's index drops it"
    kept_late = add(0.95)
    assert {f.id for f in enrolled.catch_up(db, "s")[1]} == {*faces[:3], newest, kept_late}, "no learned face left to drop"
    last = add(0.99)
    assert {f.id for f in enrolled.catch_up(db, "s")[1]} == {*faces[:3], kept_late, last}, \
        "then the enrolment photo with the lowest detector score (0.6)"


def test_a_confirmed_arrival_teaches_the_gallery_within_bounds(start_cloud, make_arrival, faces_dir, face_engine) -> None:
    client, runtime = start_cloud()
    photo = faces_dir / "deepface_id01" / "img2.jpg"
    member_id = _enrol(client, "王芳", "+8613800138000", [photo])
    pack = face_engine.pack
    space = pack.recogniser.embedding_space
    [template] = enrolled.member_vectors(runtime.db, member_id, space)
    probes = Probes(runtime, pack, template, make_arrival(photo, brand=BRAND, store=STORE, device=DEVICE))
    high = learning.min_score(pack.id) + 0.02

    def arrive(score: float, seed: int):
        # each arrival its own visit: the earlier ones moved out of the same-visit window
        runtime.db.execute("UPDATE visits SET ts = '2026-01-01T00:00:00+00:00'")
        return probes.arrive(score, seed)

    def answer(card, action: str) -> None:
        assert probes.answer(card, action) in ("stored", "confirmed")

    def learned() -> list[dict]:
        return runtime.db.query("SELECT visit_id, score FROM faces WHERE source = 'arrival'")

    low = arrive((pack.match_threshold + learning.min_score(pack.id)) / 2, 1)
    assert low.member is not None and runtime.db.scalar("SELECT COUNT(*) FROM face_pending") == 0, \
        "shown as the member, but not sure enough to learn from: nothing is kept"
    first = arrive(high, 2)
    assert first.member is not None and first.member.member_id == member_id
    answer(first, "served")
    assert [r["visit_id"] for r in learned()] == [first.visit_id]
    assert enrolled.face_count(runtime.db, member_id) == 2
    second = arrive(high, 3)
    answer(second, "served")
    assert len(learned()) == 1, "at most one learned face per person per day"
    answer(first, "not_this_person")
    assert learned() == [], "a 'not this person' takes back what the visit taught"

    band = (uncertain_floor(pack) + pack.match_threshold) / 2
    asked = arrive(band, 4)
    assert asked.member is None and asked.candidate is not None
    answer(asked, "confirmed")
    assert learned() == [], "an uncertain face is never learned, whatever the answer"

    held = arrive(high, 5)
    assert held.member is not None and runtime.db.scalar("SELECT COUNT(*) FROM face_pending") == 1
    assert learning.expire(runtime.db) == 0, "held today: kept until the assistant answers"
    assert learning.expire(runtime.db, now() + learning.PENDING_FOR + timedelta(minutes=1)) == 1, \
        "a day unanswered: dropped by the scheduler's job"
    held = arrive(high, 6)
    assert held.member is not None and runtime.db.scalar("SELECT COUNT(*) FROM face_pending") == 1
    assert client.put(f"/v1/members/{member_id}/consent", json={"face": False}).status_code == 200
    assert runtime.db.scalar("SELECT COUNT(*) FROM face_pending") == 0, "withdrawn consent: the held face goes too"


def test_a_pack_switch_re_embeds_the_gallery_before_boxes_move(start_cloud, faces_dir, models_dir, face_engine) -> None:
    client, runtime = start_cloud()
    old_space = face_engine.pack.recogniser.embedding_space
    wang = _enrol(client, "王芳", "+8613800138000", [faces_dir / "deepface_id01" / "img2.jpg"])
    li = _enrol(client, "李娜", "+8613900139000", [faces_dir / "deepface_id02" / "img26.jpg"])
    legacy = members.add_member(runtime.db, name="赵敏", phone="13700137000", gender="female", tier="gold", tags=[],
                                categories=[], face_consent=True, store=STORE)
    enrolled.add_face(runtime.db, member_id=legacy.id, vector=np.ones(128), embedding_space=old_space,
                      pack_id=face_engine.pack.id, det_score=0.8)  # enrolled before thumbnails were kept
    devices.observed(runtime.db, BRAND, STORE, "e1", "edge", ts=datetime.now(UTC), model_pack=face_engine.pack.id)

    made = client.post("/v1/rollouts", json={"brand": BRAND, "pack_id": "yunet-dlib", "canary_stores": [STORE]})
    assert made.status_code == 201, made.text
    gallery = made.json()["gallery"]
    assert gallery == {"pack": "yunet-dlib", "embedding_space": "dlib-resnet-v1", "members": 3, "reembedded": 2,
                       "already": 0, "skipped": {"no_thumbnail": [legacy.id]}}
    assert {f.member_id for f in enrolled.catch_up(runtime.db, "dlib-resnet-v1")[1]} == {wang, li}

    # an arrival from a box running the new pack names the member, from the re-embedded gallery
    dlib = FaceEngine.load("yunet-dlib", models_dir)
    from protocol.facepack.engine import decode_image
    image = decode_image((faces_dir / "deepface_id01" / "img2.jpg").read_bytes())
    vector = dlib.embed(image, dlib.detect(image)[0])
    found = Matcher(runtime.index, runtime.db, face_engine.pack).match(vector, "yunet-dlib", STORE)
    assert found.reason == "member" and found.member is not None and found.member.id == wang


def test_a_member_with_two_photos_is_judged_by_the_mean_templates_own_bounds(start_cloud, faces_dir, face_engine) -> None:
    client, runtime = start_cloud()
    pack = face_engine.pack
    assert pack.templates is not None and pack.templates.mode == "mean" and pack.templates.floor is not None
    member_id = _enrol(client, "王芳", "+8613800138000",
                       [faces_dir / "deepface_id01" / "img2.jpg", faces_dir / "deepface_id01" / "img4.jpg"])
    mean = enrolled.mean_template(enrolled.member_vectors(runtime.db, member_id, pack.recogniser.embedding_space))
    assert mean is not None
    matcher = Matcher(runtime.index, runtime.db, pack)

    def at(score: float):
        return matcher.match(probe(mean, score, 7), pack.id, STORE)

    # a score that would name a one-photo member is only a question for a two-photo one (mean mode)
    assert pack.match_threshold < pack.templates.threshold
    between = (pack.match_threshold + pack.templates.threshold) / 2
    assert at(between).reason == "uncertain"
    assert at(pack.templates.threshold + 0.01).reason == "member"
    # and under the mean mode's own FPIR-1% floor nobody is asked, though the one-photo floor is lower
    assert uncertain_floor(pack) < pack.templates.floor
    assert at((uncertain_floor(pack) + pack.templates.floor) / 2).reason == "below_threshold"
    assert uncertain_floor(pack, templates=2) == pack.templates.floor


def test_the_kept_mean_templates_are_the_stored_faces_mean_after_enrol_re_enrol_and_erase(db) -> None:
    """The gallery normalises a member's mean template when their faces change, not per search: after
    each change it must equal the mean recomputed from the faces the database holds."""
    rng = np.random.default_rng(19)
    space, dim = "space", 32
    alice, bob = (members.add_member(db, name=name, phone=phone, gender="female", tier="普通会员", tags=[],
                                     categories=[], face_consent=True).id
                  for name, phone in (("alice", "13800000011"), ("bob", "13800000012")))
    index = FaceIndex.from_database(db, space, dim, template_mode="mean")

    def enrol(member_id: str, photos: int) -> None:
        for _ in range(photos):
            enrolled.add_face(db, member_id=member_id, vector=rng.normal(size=dim), embedding_space=space,
                              pack_id="p", det_score=0.9)
        index.refresh()

    def assert_kept_templates_are_recomputed() -> None:
        for member_id in (alice, bob):
            recomputed = enrolled.mean_template(enrolled.member_vectors(db, member_id, space))
            kept = index.template(member_id)
            if recomputed is None:
                assert kept is None
            else:
                assert kept is not None and np.allclose(kept, recomputed, atol=1e-6)
                assert float(np.linalg.norm(kept)) == pytest.approx(1.0)

    enrol(alice, 2)
    enrol(bob, 1)
    assert_kept_templates_are_recomputed()
    enrol(alice, enrolled.MAX_TEMPLATES)  # past the cap: her oldest photos leave, the epoch moves
    assert enrolled.face_count(db, alice) == enrolled.MAX_TEMPLATES
    assert_kept_templates_are_recomputed()
    erasure.erase(db, bob, actor="hq")
    index.refresh()
    assert index.template(bob) is None and len(index) == enrolled.MAX_TEMPLATES
    assert_kept_templates_are_recomputed()
    probe = rng.normal(size=dim)
    found = index.search(probe)
    assert found is not None and found.member_id == alice and found.runner_up is None
    assert found.score == pytest.approx(float(index.template(alice) @ _unit(probe)), abs=1e-6)


def test_a_face_committed_late_below_the_newest_known_number_still_reaches_the_gallery(db) -> None:
    """A refresh that finds the same epoch and as many faces in its window as it knows reads nothing
    more; a face numbered below the newest one known (its enrolment committed late) changes the count."""
    rng = np.random.default_rng(20)
    member = members.add_member(db, name="李娜", phone="13800000013", gender="female", tier="普通会员", tags=[],
                                categories=[], face_consent=True).id
    index = FaceIndex.from_database(db, "space", 8)

    def insert(n: int) -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO faces (n, id, member_id, embedding, embedding_space, pack, det_score, created) "
                       "VALUES (?, ?, ?, ?, 'space', 'p', 0.9, ?)",
                       (n, f"f{n}", member, _unit(rng.normal(size=8)).astype("<f4").tobytes(), now().isoformat()))

    insert(1)
    insert(10)
    index.refresh()
    index.refresh()
    assert len(index) == 2
    insert(5)
    index.refresh()
    assert len(index) == 3 and index.search(rng.normal(size=8)) is not None
