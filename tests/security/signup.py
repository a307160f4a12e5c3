"""The red-team tests' common start: a cloud, an HQ key, and one member signed up over the API."""

from __future__ import annotations

from typing import Any

from cloud.api import auth


def hq_with_member(start_cloud: Any, *, name: str, phone: str, gender: str, face: bool) -> tuple[Any, Any, dict, str]:
    """(client, runtime, HQ headers, member id) after ``POST /v1/members`` with that face consent."""
    client, runtime = start_cloud()
    hq = {"X-API-Key": auth.create_key(runtime.db, name="Zhou HQ", role="hq_admin").key}
    made = client.post("/v1/members", headers=hq, json={"name": name, "phone": phone, "gender": gender,
                                                        "consent": {"face": face}})
    assert made.status_code == 201, made.text
    return client, runtime, hq, made.json()["id"]
