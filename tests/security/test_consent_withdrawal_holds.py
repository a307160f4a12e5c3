"""Red team (issue 15, consent): a withdrawal must outlive every later record that says otherwise.

A member signed up at the counter with face consent and withdrew it. Then the brand's CRM export
(a ``members`` file, signed up years ago, ``face_consent`` 是) lands with the same phone: OneID joins
it to the person and, being older, it becomes the head record, whose own flag counted as the
person's consent: consent the person had withdrawn was back, with no act of theirs. The rule
(``survivorship.face_consent``) now also asks the consent log: a record's consent counts only if it
was not given (or imported) before the person's latest withdrawal.
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

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
