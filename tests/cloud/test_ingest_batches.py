"""Arrivals waiting in the ingest's inbox are stored in one transaction (``EventProcessor.route_batch``,
PostgreSQL), and a batch that fails is rolled back whole and routed again one by one: a poison
message sinks only itself, nothing is counted twice, and a visitor remembered by the rolled-back
batch does not swallow its own arrival when routed again."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cloud.arrivals import cards as cards_module
from cloud.arrivals import visits
from cloud.arrivals.cards import CardBuilder
from cloud.arrivals.ingest import BATCH_MAX, EventProcessor, IngestWorker
from cloud.arrivals.visits import Visit
from cloud.cdp.members import add_member
from cloud.db import Database
from cloud.faces.enrolled import add_face
from cloud.faces.gallery import FaceIndex
from cloud.faces.matching import Matcher
from protocol import topics, transport
from protocol.codec import encode
from protocol.embedding import Embedding
from protocol.facepack import get_pack
from protocol.messages import Arrival, FaceQuality, new_id, now

PACK = get_pack()
BRAND = "demo"


def _unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.standard_normal(PACK.recogniser.embedding_dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _processor(db: Database) -> EventProcessor:
    index = FaceIndex.from_database(db, PACK.recogniser.embedding_space, PACK.recogniser.embedding_dim,
                                    template_mode=PACK.template_mode)
    return EventProcessor(db, Matcher(index, db, PACK), CardBuilder(db, ttl_s=60), require_known_devices=False)


def _arrival(vector: np.ndarray, store: str) -> tuple[str, bytes]:
    arrival = Arrival(event_id=new_id(), ts=now(), brand=BRAND, store=store, device="edge-01", camera="door-1",
                      track_id=new_id(), embedding=Embedding.from_vector(vector),
                      quality=FaceQuality(det_score=0.9, face_px=96, bbox=(10, 10, 106, 106)), model_pack=PACK.id)
    return topics.arrival(BRAND, store, "edge-01"), encode(arrival)


@pytest.fixture
def member_face(db: Database) -> np.ndarray:
    vector = _unit(np.random.default_rng(7))
    member = add_member(db, name="王芳", phone="13900000001", gender="F", tier="gold", tags=[], categories=[],
                        face_consent=True)
    add_face(db, member_id=member.id, vector=vector, embedding_space=PACK.recogniser.embedding_space,
             pack_id=PACK.id, det_score=0.9)
    return vector


def _unreadable_profile(*args: object, **kwargs: object) -> object:
    """A member card's profile read that fails: the poison in a batch."""
    raise ValueError("a profile that cannot be read")


def _stored(db: Database) -> tuple[int, int]:
    return db.scalar("SELECT COUNT(*) FROM arrivals"), db.scalar("SELECT COUNT(*) FROM visits")


def test_a_batch_stores_every_arrival_with_its_card(db: Database, member_face: np.ndarray) -> None:
    processor = _processor(db)
    rng = np.random.default_rng(1)
    messages = [_arrival(member_face, "sh-001"), *(_arrival(_unit(rng), f"sh-00{n}") for n in range(2, 5))]
    routed = processor.route_batch(messages)
    counts = processor.counters.snapshot()
    if not db.atomic_groups:  # SQLite: a batch would not be one transaction; nothing was routed
        assert routed is None and _stored(db) == (0, 0) and counts.received == 0
        return
    assert routed is not None and all(o is not None for o in routed)
    assert [o.card.member is not None for o in routed if o is not None] == [True, False, False, False]
    assert _stored(db) == (4, 4)
    assert (counts.received, counts.matched, counts.visitors, counts.batches) == (4, 1, 3, 1)


def test_a_poison_message_rolls_its_batch_back_and_sinks_only_itself(
    db: Database, member_face: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poison is the member's arrival, whose card cannot be made (a fault injected into the card's
    profile read); the visitor before it in the batch and the one after still get theirs."""
    if not db.atomic_groups:
        pytest.skip("SQLite routes arrivals one by one: the worker tests below cover its path")
    processor = _processor(db)
    rng = np.random.default_rng(2)
    visitor = _unit(rng)
    messages = [_arrival(visitor, "sh-001"), _arrival(member_face, "sh-001"), _arrival(_unit(rng), "sh-001")]
    monkeypatch.setattr(cards_module.profiles, "profile_reads", _unreadable_profile)
    assert processor.route_batch(messages) is None
    counts = processor.counters.snapshot()
    assert _stored(db) == (0, 0), "the failed batch left rows behind"
    assert (counts.received, counts.visitors, counts.batch_fallbacks) == (0, 0, 1)

    first = processor.route_retrying(*messages[0])
    assert first is not None and first.card.member is None, "the rolled-back visitor swallowed its own arrival"
    with pytest.raises(ValueError):
        processor.route_retrying(*messages[1])
    assert processor.route_retrying(*messages[2]) is not None
    counts = processor.counters.snapshot()
    assert (counts.received, counts.visitors, counts.same_visit) == (3, 2, 0)
    assert db.scalar("SELECT COUNT(*) FROM devices") == 1, "the box's row, rolled back with the batch, written again"


def test_a_box_row_is_written_by_its_first_arrival_then_at_most_every_half_minute(db: Database) -> None:
    processor = _processor(db)
    rng = np.random.default_rng(5)
    processor.route(*_arrival(_unit(rng), "sh-001"))
    db.execute("UPDATE devices SET last_seen = '2026-01-01T00:00:00+00:00'")
    processor.route(*_arrival(_unit(rng), "sh-001"))
    assert db.scalar("SELECT last_seen FROM devices") == "2026-01-01T00:00:00+00:00"
    processor.route(*_arrival(_unit(rng), "sh-002"))  # another store's box: a row of its own
    assert db.scalar("SELECT COUNT(*) FROM devices") == 2


def _worker(processor: EventProcessor, monkeypatch: pytest.MonkeyPatch, published: list[str]) -> IngestWorker:
    """A worker that is never connected: its inbox filled by hand, its cards' visits caught as published."""
    worker = IngestWorker(processor, transport.BrokerUrl.parse("mqtt://127.0.0.1:1"), client_id="test",
                          card_ttl_s=60)
    monkeypatch.setattr(worker, "_publish", lambda outgoing: published.append(outgoing.card.visit_id))
    return worker


def _run(worker: IngestWorker, messages: list[tuple[str, bytes]]) -> None:
    for mid, (topic, payload) in enumerate(messages):
        worker._inbox.put((topic, payload, mid, 0, 0))
    worker._inbox.put(None)
    worker._run()


def test_the_worker_batches_waiting_arrivals_and_publishes_every_card(
    db: Database, member_face: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor, published = _processor(db), []
    rng = np.random.default_rng(3)
    arrivals = [_arrival(_unit(rng), f"s{n:03d}") for n in range(BATCH_MAX + 3)]
    not_an_arrival = (topics.arrival(BRAND, "s000", "edge-01").replace("evt/arrival", "evt/nonsense"), b"{}")
    _run(_worker(processor, monkeypatch, published), [*arrivals, not_an_arrival, arrivals[0]])
    counts = processor.counters.snapshot()
    assert len(published) == len(arrivals) and _stored(db) == (len(arrivals), len(arrivals))
    assert counts.duplicates == 1 and counts.errors == 0
    # PostgreSQL: a full batch, the three left over, then the odd message and the repeat on their own
    assert counts.batches == (2 if db.atomic_groups else 0)


def test_a_poison_message_in_the_worker_costs_only_its_own_card(
    db: Database, member_face: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor, published = _processor(db), []
    rng = np.random.default_rng(4)
    messages = [_arrival(_unit(rng), "sh-001"), _arrival(member_face, "sh-002"), _arrival(_unit(rng), "sh-003")]
    monkeypatch.setattr(cards_module.profiles, "profile_reads", _unreadable_profile)
    _run(_worker(processor, monkeypatch, published), messages)
    counts = processor.counters.snapshot()
    assert len(published) == 2 and _stored(db) == (2, 2)
    assert (counts.errors, counts.visitors, counts.batch_fallbacks) == (1, 2, 1 if db.atomic_groups else 0)


def test_two_ingest_processes_storing_one_member_from_two_boxes_make_one_visit(db: Database) -> None:
    """The visit rule is serialised per person and store (``visits.hold_member_visit``): a second
    transaction (another ingest process's batch) that looks for the member's visit while the first
    has opened one but not committed waits, then finds it, instead of opening a second visit."""
    if db.dialect.name == "sqlite":
        pytest.skip("one SQLite writer: no second process stores arrivals at the same time")
    member = add_member(db, name="王芳", phone="13900000002", gender="F", tier="gold", tags=[], categories=[],
                        face_consent=True)
    opened = threading.Event()
    found: list[str | None] = []

    def visit(box: str) -> Visit:
        return Visit(id=new_id(), brand=BRAND, store="s1", member_id=member.id, confidence=0.9, ts=now(),
                     arrival_event_id=new_id(), device=box, camera="door-1", card_id=new_id())

    def first_box() -> None:
        with db.grouped():
            visits.hold_member_visit(db, member.id, BRAND, "s1")
            assert visits.member_visit_nearby(db, member.id, BRAND, "s1", now()) is None
            visits.record_visit(db, visit("edge-01"))
            opened.set()
            time.sleep(0.5)  # the batch's other arrivals

    def second_box() -> None:
        opened.wait(5)
        with db.grouped():
            visits.hold_member_visit(db, member.id, BRAND, "s1")
            found.append(visits.member_visit_nearby(db, member.id, BRAND, "s1", now()))

    threads = [threading.Thread(target=first_box), threading.Thread(target=second_box)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert found == [db.scalar("SELECT id FROM visits WHERE member_id = ?", (member.id,))]
    assert found[0] is not None
