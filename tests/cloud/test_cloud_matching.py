"""Member or visitor on controlled vectors: every doubt must end as a visitor."""

from __future__ import annotations

import numpy as np
import pytest

from cloud.cdp import members
from cloud.db import Database
from cloud.faces import enrolled
from cloud.faces.gallery import FaceIndex
from cloud.faces.matching import Matcher, uncertain_floor
from protocol.facepack import DEFAULT_PACK, get_pack

PACK = get_pack(DEFAULT_PACK)
DIM = PACK.recogniser.embedding_dim


def _unit(rng: np.random.Generator) -> np.ndarray:
    vec = rng.standard_normal(DIM).astype(np.float32)
    return vec / np.linalg.norm(vec)


def _towards(a: np.ndarray, b: np.ndarray, cos: float) -> np.ndarray:
    """A unit vector with cosine ``cos`` to ``a``, in the plane of ``a`` and ``b``."""
    ortho = b - (b @ a) * a
    ortho /= np.linalg.norm(ortho)
    return cos * a + np.sqrt(1 - cos**2) * ortho


def _member(db: Database, phone: str, *, consent: bool = True) -> str:
    return members.add_member(db,
        name="王芳", phone=phone, gender="female", tier="普通会员", tags=[], categories=[], face_consent=consent
    ).id


def _matcher(db: Database, faces: dict[str, list[np.ndarray]]) -> Matcher:
    index = FaceIndex(PACK.recogniser.embedding_space, DIM)
    for member_id, vectors in faces.items():
        for vec in vectors:
            index.add(member_id, vec)
    return Matcher(index, db, PACK)


def test_clear_match_is_the_member_and_a_stranger_is_a_visitor(db: Database) -> None:
    rng = np.random.default_rng(1)
    a, b, stranger = _unit(rng), _unit(rng), _unit(rng)
    alice, bob = _member(db, "13800000001"), _member(db, "13800000002")
    matcher = _matcher(db, {alice: [a], bob: [b]})

    hit = matcher.match(_towards(a, stranger, 0.7), DEFAULT_PACK)
    assert hit.member is not None and hit.member.id == alice and hit.reason == "member"
    assert hit.confidence == pytest.approx(0.7, abs=1e-5)

    miss = matcher.match(stranger, DEFAULT_PACK)
    assert miss.member is None and miss.reason == "below_threshold"

    # issue 18: just under the threshold (above the pack's FPIR-1% floor) the card asks, never names
    just_under = matcher.match(_towards(a, stranger, PACK.match_threshold - 0.01), DEFAULT_PACK)
    assert just_under.member is None and just_under.reason == "uncertain"
    assert just_under.candidate is not None and just_under.candidate.id == alice
    under_floor = matcher.match(_towards(a, stranger, uncertain_floor(PACK) - 0.01), DEFAULT_PACK)
    assert under_floor.member is None and under_floor.candidate is None and under_floor.reason == "below_threshold"


def test_two_similar_members_are_too_close_to_call(db: Database) -> None:
    rng = np.random.default_rng(2)
    a, other = _unit(rng), _unit(rng)
    twin = _towards(a, other, 0.9)
    alice, bob = _member(db, "13800000001"), _member(db, "13800000002")
    matcher = _matcher(db, {alice: [a], bob: [twin]})

    verdict = matcher.match(_towards(a, twin, 0.99), DEFAULT_PACK)

    assert verdict.member is None and verdict.reason == "ambiguous"


def test_several_photos_of_one_member_do_not_make_them_their_own_runner_up(db: Database) -> None:
    rng = np.random.default_rng(3)
    a, noise = _unit(rng), _unit(rng)
    alice = _member(db, "13800000001")
    matcher = _matcher(db, {alice: [a, _towards(a, noise, 0.95)]})

    verdict = matcher.match(a, DEFAULT_PACK)

    assert verdict.member is not None and verdict.member.id == alice


def test_no_consent_unknown_pack_and_empty_gallery_mean_visitor(db: Database) -> None:
    rng = np.random.default_rng(4)
    a = _unit(rng)
    withdrawn = _member(db, "13800000001", consent=False)
    matcher = _matcher(db, {withdrawn: [a]})

    assert matcher.match(a, DEFAULT_PACK).reason == "no_consent"
    assert matcher.match(a, "no-such-pack").reason == "unknown_pack"
    assert _matcher(db, {}).match(a, DEFAULT_PACK).reason == "empty_gallery"


def test_another_pack_of_the_same_embedding_space_is_matched(db: Database) -> None:
    rng = np.random.default_rng(5)
    a = _unit(rng)
    alice = _member(db, "13800000001")
    assert get_pack("yunet-mbf").recogniser.embedding_space == PACK.recogniser.embedding_space

    verdict = _matcher(db, {alice: [a]}).match(a, "yunet-mbf")

    assert verdict.member is not None and verdict.member.id == alice


def test_gallery_is_rebuilt_from_the_store(db: Database) -> None:
    rng = np.random.default_rng(6)
    a = _unit(rng)
    alice = _member(db, "13800000001")
    enrolled.add_face(db, member_id=alice, vector=a, embedding_space=PACK.recogniser.embedding_space,
                   pack_id=PACK.id, det_score=0.9)
    enrolled.add_face(db, member_id=alice, vector=_unit(rng)[:64], embedding_space="another-space",
                   pack_id="other", det_score=0.9)

    index = FaceIndex.from_database(db, PACK.recogniser.embedding_space, DIM)

    assert len(index) == 1
    found = index.search(a)
    assert found is not None and found.member_id == alice and found.runner_up is None
