"""Issue 18: after the assistant answers 是 to an uncertain card ("可能是 王女士？请确认"), the screen
that asked gets the member's full card for the same visit, through a real Mosquitto: the edge's
arrival, the cloud's ingest, the screen's tap and the cloud's answer. A member who withdrew face
consent between the question and the tap gets no profile, as at the door."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cloud.cdp import members
from cloud.faces import enrolled
from cloud.faces.matching import uncertain_floor
from protocol import topics, transport
from protocol.embedding import Embedding
from protocol.messages import new_id, now
from tests.cloud.conftest import face_engine, make_arrival, start_cloud  # noqa: F401 - fixtures, re-used as they are
from tests.cloud.probes import probe
from tests.kiosk.conftest import BRAND


@pytest.fixture
def db_location(tmp_path: Path) -> str:
    """SQLite only: the path under test is the broker's and the screen's, not the database engine's."""
    return str(tmp_path / "cloud.db")


def test_yes_on_an_uncertain_card_brings_the_members_full_card(
    start_cloud, make_arrival, face_engine, faces_dir: Path, mosquitto, start_kiosk, store, wait_until, artifacts  # noqa: F811
):
    api, runtime = start_cloud(broker_url=mosquitto.url)
    ids = {}
    for name, phone, folder, photo in (("王芳", "13800000051", "deepface_id01", "img2.jpg"),
                                       ("张伟", "13800000052", "deepface_id02", "img26.jpg")):
        ids[name] = api.post("/v1/members", json={
            "name": name, "phone": phone, "gender": "female" if name == "王芳" else "male", "tier": "金卡会员",
            "preferences": ["护肤"], "consent": {"face": True}}).json()["id"]
        image = (faces_dir / folder / photo).read_bytes()
        assert api.post(f"/v1/members/{ids[name]}/faces",
                        files={"image": ("f.jpg", image, "image/jpeg")}).status_code == 201
    pack = face_engine.pack
    band = (uncertain_floor(pack) + pack.match_threshold) / 2
    kiosk = start_kiosk()
    url = transport.BrokerUrl.parse(mosquitto.url)
    edge = transport.make_client(url, f"test-edge-{new_id()[:8]}")
    transport.start(edge, url)
    base = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store)

    def uncertain_card_of(name: str, seed: int):
        [template] = enrolled.member_vectors(runtime.db, ids[name], pack.recogniser.embedding_space)
        arrival = base.model_copy(update={"event_id": new_id(), "ts": now(), "track_id": f"t{seed}",
                                          "embedding": Embedding.from_vector(probe(template, band, seed))})
        transport.publish(edge, topics.arrival(BRAND, store, "edge-01"), arrival).wait_for_publish(5)
        wait_until(lambda: any(c.arrival_event_id == arrival.event_id for c, _ in kiosk.shown), timeout=10,
                   what=f"{name}'s uncertain card")
        card = next(c for c, _ in kiosk.shown if c.arrival_event_id == arrival.event_id)
        assert card.member is None and card.candidate is not None and card.candidate.member_id == ids[name]
        return card

    try:
        asked = uncertain_card_of("王芳", 1)
        kiosk.screen.views[asked.card_id].confirm_button.click()
        wait_until(lambda: any(c.member is not None for c, _ in kiosk.shown), timeout=10, what="the member card")
        full = next(c for c, _ in kiosk.shown if c.member is not None)
        assert (full.visit_id, full.member.member_id, full.member.name) == (asked.visit_id, ids["王芳"], "王芳")
        assert full.member.title == "王女士" and full.script and full.candidate is None
        assert full.card_id != asked.card_id and not np.isclose(full.confidence, 0.0)
        assert list(kiosk.screen.views) == [full.card_id], "the question is gone, the member card is up"
        kiosk.screen.grab().save(str(artifacts / "kiosk_confirmed_member_card.png"))
        visit = runtime.db.one("SELECT member_id, card_id, corrected_reason FROM visits WHERE id = ?", (full.visit_id,))
        assert visit == {"member_id": ids["王芳"], "card_id": full.card_id, "corrected_reason": "confirmed:assistant"}
        # the full card's own taps are the visit's feedback now
        kiosk.screen.views[full.card_id].serve_button.click()
        wait_until(lambda: runtime.db.scalar("SELECT COUNT(*) FROM feedback WHERE card_id = ? AND action = 'served'",
                                             (full.card_id,)) == 1, timeout=10, what="served on the full card")

        # consent withdrawn between the question and the tap: the visit is the member's, no profile is sent
        asked = uncertain_card_of("张伟", 2)
        # (in the CDP only: the erase command that follows a withdrawal would also clear the screen)
        members.set_face_consent(runtime.db, ids["张伟"], False, actor="test")
        kiosk.screen.views[asked.card_id].confirm_button.click()
        wait_until(lambda: runtime.db.scalar("SELECT member_id FROM visits WHERE id = ?", (asked.visit_id,))
                   == ids["张伟"], timeout=10, what="张伟's confirmed visit")
        assert runtime.ingest.counts().confirmed_cards == 1
        assert [c.member.member_id for c, _ in kiosk.shown if c.member is not None] == [ids["王芳"]]
    finally:
        transport.stop(edge)
