"""HQ previews what a member's guide card would say at a store: recommendations and the script,
with the members router's roles, and without counting the preview as a shown script."""

from __future__ import annotations

from tests.cloud.test_hq_api import _keys


def test_previews_match_the_card_and_follow_hq_templates(start_cloud):
    api, runtime = start_cloud()
    keys = _keys(api)
    created = api.post("/v1/members", headers=keys["store_manager"], json={
        "name": "李娜", "phone": "13800000021", "gender": "female", "tier": "钻石会员", "preferences": ["香水"],
        "consent": {"face": True}})
    assert created.status_code == 201, created.text
    member = created.json()["id"]

    recs = api.get(f"/v1/members/{member}/recommendations", params={"store": "s1"}, headers=keys["hq_analyst"])
    assert recs.status_code == 200, recs.text
    body = recs.json()
    assert body["store"] == "s1" and len(body["items"]) == 3  # what the card carries
    assert body["items"][0] | {"price": 0} == {"sku": body["items"][0]["sku"], "name": "白茶淡香水 50ml",
                                               "category": "香水", "price": 0, "kind": "preferred",
                                               "reason": "偏好品类：香水"}
    english = api.get(f"/v1/members/{member}/recommendations", params={"store": "s1", "lang": "en", "limit": 5},
                      headers=keys["hq_admin"]).json()
    assert len(english["items"]) == 5 and english["items"][0]["reason"] == "in 香水, a category you told us you like"

    script = api.get(f"/v1/members/{member}/script", params={"store": "s1"}, headers=keys["store_manager"]).json()
    assert script["text"].startswith("李女士您好") and script["template_id"].startswith("builtin-")
    assert "白茶淡香水 50ml" in script["text"]
    situation = script["template_id"].removeprefix("builtin-").removesuffix("-zh")
    made = api.post("/v1/scripts/templates", headers=keys["hq_admin"],
                    json={"situation": situation, "text": "{title}，香水新品到了，试试{rec1}？"})
    assert made.status_code == 201, made.text
    again = api.get(f"/v1/members/{member}/script", params={"store": "s1"}, headers=keys["hq_admin"]).json()
    assert again == {"member_id": member, "store": "s1", "lang": "zh", "text": "李女士，香水新品到了，试试白茶淡香水 50ml？",
                     "template_id": made.json()["id"], "variant": "A"}
    english = api.get(f"/v1/members/{member}/script", params={"store": "s1", "lang": "en"}, headers=keys["hq_admin"])
    assert english.json()["text"].startswith("Welcome") and english.json()["lang"] == "en"
    assert runtime.db.scalar("SELECT COUNT(*) FROM script_shown") == 0  # a preview is not a card


def test_previews_refuse_other_stores_roles_and_bad_input(start_cloud):
    api, _ = start_cloud()
    keys = _keys(api)
    member = api.post("/v1/members", headers=keys["hq_admin"], json={
        "name": "王芳", "phone": "13800000022", "gender": "female", "consent": {"face": False}}).json()["id"]
    for route in ("recommendations", "script"):
        url = f"/v1/members/{member}/{route}"

        def code(params: dict, role: str, url: str = url) -> tuple[int, str]:
            response = api.get(url, params=params, headers=keys[role])
            return response.status_code, response.json()["detail"]["code"] if response.status_code != 200 else ""

        assert code({"store": "s1"}, "hq_admin")[0] == 200
        assert code({"store": "s2"}, "store_manager") == (403, "forbidden_store")  # not their store
        assert code({"store": "s1"}, "store_manager") == (403, "forbidden_store")  # not their customer
        assert code({"store": "s1"}, "device") == (403, "forbidden")
        assert code({"store": "s1/#"}, "hq_admin") == (422, "invalid_store")
        assert api.get(f"/v1/members/nobody/{route}", params={"store": "s1"},
                       headers=keys["hq_admin"]).json()["detail"]["code"] == "unknown_member"
        assert api.get(url, headers=keys["hq_admin"]).status_code == 422  # store is required
    assert api.get(f"/v1/members/{member}/script", params={"store": "s1", "lang": "fr"},
                   headers=keys["hq_admin"]).status_code == 422
