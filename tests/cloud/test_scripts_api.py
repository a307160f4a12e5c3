"""HQ edits the sales-script templates through the API; unsafe templates are refused with a reason."""

from __future__ import annotations


def test_templates_are_created_listed_updated_and_checked(start_cloud):
    api, _ = start_cloud()
    made = api.post("/v1/scripts/templates", json={"situation": "tier_high", "lang": "zh", "variant": "B",
                                                   "text": "{title}您好！今天为您准备了{rec1}。"})
    assert made.status_code == 201, made.text
    template_id = made.json()["id"]

    listed = api.get("/v1/scripts/templates", params={"situation": "tier_high", "lang": "zh"}).json()
    assert template_id in {t["id"] for t in listed} and any(t["builtin"] for t in listed)

    bad = api.post("/v1/scripts/templates", json={"situation": "tier_high", "text": "{title}您好 {password}"})
    assert bad.status_code == 422 and bad.json()["detail"]["code"] == "invalid_template"
    assert "password" in bad.json()["detail"]["message"]
    again = api.post("/v1/scripts/templates", json={"situation": "tier_high", "variant": "B", "text": "{title}您好"})
    assert again.status_code == 422 and "exists" in again.json()["detail"]["message"]

    changed = api.put(f"/v1/scripts/templates/{template_id}", json={"active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert api.put("/v1/scripts/templates/nope", json={"active": True}).json()["detail"]["code"] == "unknown_template"
    assert api.put(f"/v1/scripts/templates/{template_id}", json={"text": "{oops"}).status_code == 422

    assert "title" in api.get("/v1/scripts/fields").json()["fields"]
    assert api.get("/v1/scripts/outcomes").status_code == 200
