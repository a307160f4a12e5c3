"""Red team (issue 15, consent): a withdrawal must outlive every later record that says otherwise.

A member signed up at the counter with face consent and withdrew it. Then the brand's CRM export
(a ``members`` file, signed up years ago, ``face_consent`` 是) lands with the same phone: OneID joins
it to the person and, being older, it becomes the head record, whose own flag counted as the
person's consent: consent the person had withdrawn was back, with no act of theirs. The rule
(``survivorship.face_consent``) now also asks the consent log: a record's consent counts only if it
was not given (or imported) before the person's latest withdrawal. Learning from confirmed arrivals
and re-embedding for a pack switch ask that same rule (``survivorship.face_consent_of``).
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

from cloud.faces import enrolled, learning, reembed, thumbnails
from protocol.facepack import get_pack
from protocol.facepack.engine import FaceEngine, decode_image
from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)
from tests.security.signup import hq_with_member

PHONE = "13700137000"
CRM = ("member_card,phone,name,gender,store,face_consent,signed_up\n"
       f"MC-OLD-1,{PHONE},赵敏,女,s1,是,2019-03-01\n")


def test_an_older_crm_record_with_consent_does_not_undo_a_withdrawal(start_cloud) -> None:
    client, runtime, hq, member = hq_with_member(start_cloud, name="赵敏", phone=PHONE, gender="female", face=True)
    assert client.get(f"/v1/members/{member}", headers=hq).json()["consent"] == {"face": True}
    assert client.put(f"/v1/members/{member}/consent", headers=hq, json={"face": False}).status_code == 200

    imported = client.post("/v1/imports?channel=members", headers=hq, files={"file": ("crm.csv", CRM.encode())})
    assert imported.status_code == 201, imported.text
    crm = runtime.db.scalar("SELECT id FROM members WHERE source = 'members'")
    after = client.get(f"/v1/members/{member}", headers=hq).json()
    assert after["id"] == crm  # the older CRM record joined the person and heads it
    assert after["consent"] == {"face": False}, "the withdrawal was undone by an import"
    assert client.post("/v1/segments/count", headers=hq,
                       json={"condition": {"consent": {"face": True}}}).json()["count"] == 0
    # the person's own new grant is what turns it back on
    assert client.put(f"/v1/members/{member}/consent", headers=hq, json={"face": True}).status_code == 200
    assert client.get(f"/v1/members/{member}", headers=hq).json()["consent"] == {"face": True}


def test_a_withdrawn_face_is_neither_learned_from_nor_carried_to_a_new_pack(start_cloud, faces_dir, models_dir,
                                                                            face_engine) -> None:
    """Learning from a confirmed arrival and re-embedding for a pack switch read the head record's
    own flag: the CRM head's 是 turned both back on after the withdrawal. They now ask the same rule
    as the door; the person's own new grant is again what turns them on."""
    client, runtime, hq, member = hq_with_member(start_cloud, name="赵敏", phone=PHONE, gender="female", face=True)
    assert client.put(f"/v1/members/{member}/consent", headers=hq, json={"face": False}).status_code == 200
    assert client.post("/v1/imports?channel=members", headers=hq,
                       files={"file": ("crm.csv", CRM.encode())}).status_code == 201
    crm = runtime.db.scalar("SELECT id FROM members WHERE source = 'members'")
    # what a face path finds on the person: a face under the CRM head, with its thumbnail, and held arrivals
    pack = face_engine.pack
    image = decode_image((faces_dir / "deepface_id01" / "img2.jpg").read_bytes())
    found = face_engine.detect(image)[0]
    vector = face_engine.embed(image, found)
    face = enrolled.add_face(runtime.db, member_id=crm, vector=vector, embedding_space=pack.recogniser.embedding_space,
                             pack_id=pack.id, det_score=float(found.score))
    thumbnails.save(runtime.db, crm, face.id, thumbnails.encode(face_engine.align(image, found)))
    score = float(learning.min_score(pack.id) or 0) + 0.02

    def learned(visit: str) -> str | None:
        assert learning.hold(runtime.db, visit_id=visit, member_id=crm, vector=vector, pack_id=pack.id, score=score)
        with runtime.db.transaction() as tx:
            return learning.learn(tx, visit, crm)

    def carried() -> dict:
        dlib = get_pack("yunet-dlib")
        return reembed.carry_over(runtime.db, dlib, lambda: FaceEngine.load(dlib.id, models_dir)).as_dict()

    assert learned("v-withdrawn") is None
    assert carried()["skipped"] == {"no_consent": [crm]}
    assert runtime.db.scalar("SELECT COUNT(*) FROM faces") == 1, "nothing learned, nothing re-embedded"
    assert client.put(f"/v1/members/{member}/consent", headers=hq, json={"face": True}).status_code == 200
    assert learned("v-granted") is not None
    assert carried()["reembedded"] == 1
