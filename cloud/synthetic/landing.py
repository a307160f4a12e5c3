"""The synthetic brand through the entry points a brand uses, not a private copy of them.

Files go through ``cloud.masterdata.importer.import_master`` and ``cloud.cdp.imports.importer.import_file``
(what ``instore cloud import`` and ``POST /v1/imports`` / ``POST /v1/master/{kind}`` call), so
cleaning, quarantine, OneID, profiles and tags happen as for a brand's upload; the shop floor's
till orders go through ``cloud.arrivals.till.land``, the call ``POST /v1/orders`` makes once the
signature is verified (attribution to visit and assistant, loyalty and journey hooks included).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from cloud.arrivals import till
from cloud.cdp.imports.importer import ImportReport, import_file
from cloud.db import Database
from cloud.masterdata.importer import MasterReport, import_master
from cloud.synthetic.exports import Import, write_csv

#: orders per batch, as a till or a channel posts them (``POST /v1/orders`` takes up to 5,000)
TILL_BATCH = 500


def import_files(db: Database, files: list[Import], *, progress: bool = False) -> dict[str, dict]:
    """Import each file in order (master data first); per file its rows and what was quarantined."""
    done: dict[str, dict] = {}
    for item in files:
        data = item.path.read_bytes()
        report: MasterReport | ImportReport
        if item.kind:
            report = import_master(db, item.kind, data, source=item.path.name, actor="generate")
        else:
            assert item.channel is not None
            report = import_file(db, item.channel, data, source=item.path.name, actor="generate", progress=progress,
                                 companion=item.companion.read_bytes() if item.companion else None)
        done[item.path.name] = {"rows": report.rows, "quarantined": report.quarantined}
    return done


def land_orders(db: Database, channel: str, orders: list[dict], *, actor: str,
                batch: int = TILL_BATCH) -> tuple[Counter[str], Counter[str]]:
    """Posted orders landed in batches (``till.land``, the call behind ``POST /v1/orders``): the
    count of each attribution reason and of each quarantine reason."""
    attributed: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    for start in range(0, len(orders), batch):
        report = till.land(db, channel, orders[start:start + batch], actor=actor)
        attributed.update(report["attributed"])
        quarantined.update(report["quarantined"])
    return attributed, quarantined


class EntryPoints:
    """The floor's brand-held data (``cloud.synthetic.floor.FloorSink``) through the entry points:
    till orders landed as posted (and kept in ``till_orders.jsonl``), the counter's sign-ups as a CRM
    member list, stock positions and daily targets as master-data files, written to ``out``."""

    def __init__(self, db: Database, out: Path) -> None:
        self._db, self._out = db, out
        self._joiners: list[dict] = []
        self._stock: list[tuple] = []
        self._movements: list[tuple[str, str, str, str, int, str]] = []
        self._targets: list[tuple[str, str, float]] = []
        self._attributed: Counter[str] = Counter()
        self._quarantined: Counter[str] = Counter()
        (out / "till_orders.jsonl").write_text("", encoding="utf-8")

    def orders(self, store: str, orders: list[dict]) -> None:
        with (self._out / "till_orders.jsonl").open("a", encoding="utf-8") as log:
            log.writelines(json.dumps(o, ensure_ascii=False) + "\n" for o in orders)
        attributed, quarantined = land_orders(self._db, "pos", orders, actor=f"generate:{store}")
        self._attributed.update(attributed)
        self._quarantined.update(quarantined)

    def new_members(self, rows: list[dict]) -> None:
        self._joiners += rows

    def stock(self, rows: list[tuple]) -> None:
        self._stock += rows

    def movements(self, rows: list[tuple[str, str, str, str, int, str]]) -> None:
        self._movements += rows

    def targets(self, rows: list[tuple[str, str, float]]) -> None:
        self._targets += rows

    def finish(self) -> dict[str, object]:
        out = self._out
        write_csv(out / "new_members.csv", ("会员卡号", "姓名", "性别", "会员等级", "开卡门店", "开卡日期"),
                  [(j["card"], j["name"], "女", "普通会员", j["store"], j["signed_up"][:10]) for j in self._joiners])
        write_csv(out / "stock.csv", ("门店编码", "日期", "商品编码", "期初库存", "入库数量", "销售数量", "报损数量", "降价损失"),
                  self._stock, encoding="gbk")
        write_csv(out / "stock_movements.csv", ("门店编码", "商品编码", "发生时间", "业务类型", "数量", "单据号"),
                  self._movements)
        write_csv(out / "targets.csv", ("门店编码", "日期", "销售目标"), self._targets)
        imported = import_files(self._db, [Import(out / "new_members.csv", channel="members"),
                                           Import(out / "stock.csv", kind="stock"),
                                           Import(out / "stock_movements.csv", kind="movements"),
                                           Import(out / "targets.csv", kind="targets")])
        return {"till": {"attributed": dict(self._attributed), "quarantined": dict(self._quarantined)},
                "floor_imported": imported}
