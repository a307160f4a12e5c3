"""`instore cloud generate --floor-days` fills and rolls up the dashboards' data; `instore cloud
health rollup` backfills a range, refuses a bad one with a reason, and is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cloud.cli import app
from cloud.runtime import open_cdp

#: today is still open (an hour may close between the two runs), so compare the days before it
PAST_DAYS = "SELECT * FROM store_metrics WHERE grain = 'day' AND ts < (SELECT MAX(ts) FROM store_metrics WHERE grain = 'day')"


def test_generate_then_rollup(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    made = CliRunner().invoke(app, ["generate", "--db", db, "--members", "300", "--stores", "3", "--floor-days", "10",
                                    "--out", str(tmp_path / "brand")])
    assert made.exit_code == 0, made.output
    summary = json.loads(made.output.strip().splitlines()[-1])
    assert summary["arrivals"] > 0 and summary["rollup"]["store_days"] == 30
    # --out leaves the brand's files, each imported once (imports.source_name)
    left = {p.name for p in (tmp_path / "brand").iterdir()}
    assert {"crm_members.csv", "订单报表.csv", "stock.csv", "till_orders.jsonl"} <= left
    assert set(summary["imported"]) | set(summary["floor_imported"]) == left - {"宝贝报表.csv", "meal_order_detail.csv",
                                                                               "till_orders.jsonl"}
    database = open_cdp(db, sample_catalogue=False)
    try:
        before = sorted(database.rows(PAST_DAYS))
        assert database.scalar("SELECT COUNT(*) FROM assistants") >= 12
    finally:
        database.close()
    again = CliRunner().invoke(app, ["health", "rollup", "--db", db, "--days", "10"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["store_days"] == 30
    database = open_cdp(db, sample_catalogue=False)
    try:
        assert sorted(database.rows(PAST_DAYS)) == before
    finally:
        database.close()
    bad = CliRunner().invoke(app, ["health", "rollup", "--db", db, "--from", "2026-03-10", "--to", "2026-03-01"])
    assert bad.exit_code == 2 and "--from is after --to" in bad.output
