"""The card shows what the CDP knows (issue 15): RFM value tier and lifecycle in words, the rule tags HQ
marks for display (by priority, before the member's own), points and birthday month once known."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt

from protocol import topics, transport
from tests.cloud.test_cloud_ingest import BRAND, Guide, edge, guide, store_id  # noqa: F401


def test_member_card_carries_value_tier_lifecycle_display_tags_points_and_birthday(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    wang = client.post("/v1/members", json={
        "name": "王芳", "phone": "13800138000", "gender": "female", "tier": "金卡会员", "tags": ["敏感肌"],
        "consent": {"face": True}}).json()["id"]
    files = {"image": ("face.jpg", (faces_dir / "deepface_id01/img1.jpg").read_bytes(), "image/jpeg")}
    assert client.post(f"/v1/members/{wang}/faces", files=files).status_code == 201
    runtime.db.execute("UPDATE members SET birthday = '1990-03-15', points = 1200 WHERE id = ?", (wang,))
    everyone = {"consent": {"face": True}}
    for name, display, priority in (("门店常客", True, 5), ("高潜力", True, 9), ("内部测试", False, 99)):
        response = client.put("/v1/tags/rules", json={"name": name, "condition": everyone, "display": display,
                                                      "priority": priority})
        assert response.status_code == 200 and response.json()["display"] is display
    rules = {r["name"]: (r["display"], r["priority"]) for r in client.get("/v1/tags/rules").json()}
    assert rules == {"门店常客": (True, 5), "高潜力": (True, 9), "内部测试": (False, 99)}

    arrival = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id)
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-01"), arrival).wait_for_publish(5)
    card = guide.next()
    member = card.member
    assert member is not None and member.member_id == wang
    assert member.tags == ["高潜力", "门店常客", "敏感肌"]  # displayed rule tags by priority, then their own
    # no orders in the CDP: no RFM tier; but 金卡会员 is earned by spending, so not a prospect either
    # (lifecycle unknown: no chip) and the script promises no first-purchase gift
    assert (member.value_tier, member.lifecycle) == (None, None)
    assert card.script.startswith("王女士您好，欢迎光临！您是我们的金卡会员，感谢") and "第一次购物" not in card.script, card.script
    assert (member.points, member.birthday_month) == (1200, 3)
