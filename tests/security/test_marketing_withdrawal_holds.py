"""Red team (consent): a marketing withdrawal must hold after the person's records are merged.

Marketing consent was kept per person id as it was when decided. A member who had opted in on
another record (an older counter sign-up) withdrew SMS consent on their newer record; HQ then merged
the two, the older record became the person, and the checks read only its row: opted in. The
campaign sender messaged someone who had said no. Consent is now the person's latest decision on
any of their records (``consent.granted``), for the sends' checks and for the API alike.
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.activation import consent
from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)
from tests.security.signup import hq_with_member


def test_a_merge_does_not_undo_a_marketing_withdrawal(start_cloud) -> None:
    client, runtime, hq, older = hq_with_member(start_cloud, name="林芳", phone="13500135001", gender="female",
                                                face=False)
    opted_in = client.put(f"/v1/marketing/consent/{older}/sms", headers=hq, json={"granted": True, "source": "counter"})
    assert opted_in.status_code == 200
    newer = client.post("/v1/members", headers=hq, json={"name": "林芳", "phone": "13500135002", "gender": "female",
                                                         "consent": {"face": False}}).json()["id"]
    assert client.put(f"/v1/marketing/consent/{newer}/sms", headers=hq,
                      json={"granted": False, "source": "sms_reply"}).status_code == 200  # the latest word: no

    merged = client.post("/v1/identity/merge", headers=hq, json={"a": older, "b": newer, "reason": "same customer"})
    assert merged.status_code == 200, merged.text
    assert client.get(f"/v1/members/{newer}", headers=hq).json()["id"] == older  # the older record is the person
    assert client.get(f"/v1/marketing/consent/{newer}", headers=hq).json()["sms"]["granted"] is False
    morning = datetime.now(UTC).replace(hour=2, minute=0) + timedelta(days=1)  # 10:00 in Shanghai
    with runtime.db.transaction() as tx:
        verdict = consent.Policy(consent.Rules()).check(tx, "sms", consent.contacts(tx, [older], "sms"), morning)
    assert verdict == {older: "no_consent"}

    # the person's own new yes counts again
    assert client.put(f"/v1/marketing/consent/{older}/sms", headers=hq,
                      json={"granted": True, "source": "counter"}).status_code == 200
    with runtime.db.transaction() as tx:
        verdict = consent.Policy(consent.Rules()).check(tx, "sms", consent.contacts(tx, [older], "sms"), morning)
    assert verdict == {older: None}
