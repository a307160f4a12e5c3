"""The synthetic brand as the files a brand hands over, in the layouts the importers read.

Master data (stores, catalogue, staff) in the column names of ``docs/examples``; the CRM member
list (``crm_members``); each channel's orders in its real export layout (``cloud.cdp.imports.layouts``):
the Tmall 订单报表 + 宝贝报表 pair, the JD POP order export (GBK), the POS meal_order_info +
meal_order_detail pair, and the WeChat mini program's JSON lines. A sprinkle of the quirks real
exports carry, each handled by the importers: byte-order marks, GBK, a header with a trailing space,
masked and placeholder phones on Tmall, Excel's ``'`` guard on some phones, ``'null`` and ``NA``
cells, and orders never paid (quarantined ``not_paid``, as in the real Tmall sample).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from cloud.cdp.imports.cleaning import LOCAL_ZONE
from cloud.synthetic.drawn import Chunk, account, card, sku_name
from cloud.synthetic.floor import shift_of

#: one unpaid order (等待买家付款) in this many Tmall orders, quarantined by the importer
UNPAID_EVERY = 50


def local(seconds: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """China time as the exports print it (no zone: the importers read it as Asia/Shanghai)."""
    return datetime.fromtimestamp(seconds, UTC).astimezone(LOCAL_ZONE).strftime(fmt)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, encoding: str = "utf-8-sig") -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


@dataclass
class Import:
    """One file to import: master data (``kind``) or a channel export (``channel``, with a companion)."""

    path: Path
    kind: str | None = None
    channel: str | None = None
    companion: Path | None = None


@dataclass
class BrandFiles:
    out: Path
    brand: str
    cities: Sequence[str]
    categories: Sequence[str]
    imports: list[Import] = field(default_factory=list)
    _rows: dict[str, list] = field(default_factory=dict)

    def _add(self, name: str, rows: Iterable) -> None:
        self._rows.setdefault(name, []).extend(rows)

    def stores(self, shops: list[str], profiles: dict[str, dict]) -> None:
        rows = []
        for i, shop in enumerate(shops):
            city = self.cities[i % len(self.cities)]
            p = profiles.get(shop)
            attributes = (p["tier"], p["region"], p["format"], "Asia/Shanghai", "10:00-22:00") if p else ("",) * 5
            rows.append((shop, f"{city}{i:04d}店", self.brand, city, *attributes))
        write_csv(self.out / "stores.csv", ("门店编码", "门店名称", "品牌", "城市", "城市等级", "大区", "业态", "时区", "营业时间"),
                  rows)
        self.imports.append(Import(self.out / "stores.csv", kind="stores"))

    def staff(self, profiles: dict[str, dict]) -> None:
        if not profiles:
            return
        write_csv(self.out / "staff.csv", ("工号", "姓名", "门店编码", "岗位", "在职"),
                  [(a, name, shop, "导购", "是") for shop, p in profiles.items() for a, name in zip(p["staff"], p["names"])])
        self.imports.append(Import(self.out / "staff.csv", kind="staff"))

    def shifts(self, profiles: dict[str, dict], days: Sequence[date]) -> None:
        """Each assistant's shift on each floor day (``cloud.synthetic.floor.shift_of``), the HR roster's columns."""
        if not profiles:
            return
        write_csv(self.out / "shifts.csv", ("工号", "门店编码", "日期", "上班时间", "下班时间"),
                  [(a, shop, d.isoformat(), f"{start:02d}:00", f"{end:02d}:00") for shop, p in profiles.items()
                   for k, a in enumerate(p["staff"]) for start, end in [shift_of(k)] for d in days])
        self.imports.append(Import(self.out / "shifts.csv", kind="shifts"))

    def add(self, chunk: Chunk, shops: list[str]) -> None:
        """One chunk of persons: their CRM cards and their orders, each in its channel's export."""
        idx = chunk.idx.tolist()
        self._add("crm", (
            (card(i), f"'{chunk.phones[j]}" if i % 20 == 0 else str(chunk.phones[j]), f"会员{i}",
             "女" if chunk.gender[j] == "female" else "男", "普通会员", shops[chunk.home[j]],
             local(int(chunk.signed_up["members"][j]), "%Y-%m-%d"), "正常")
            for j, i in enumerate(idx)))
        lines_of = np.split(np.arange(len(chunk.line_order)), np.flatnonzero(np.diff(chunk.line_order)) + 1)
        for k, channel in enumerate(chunk.channel.tolist()):
            j = int(chunk.owner[k])
            i, ts, paid = idx[j], int(chunk.ts[k]), float(chunk.paid[k])
            lines = [(sku_name(int(chunk.sku[x])), self.categories[chunk.category[x]], int(chunk.qty[x]),
                      float(chunk.price[x])) for x in lines_of[k].tolist()]
            number = f"{chunk.first:07d}{k:07d}"
            if channel == "tmall":
                no, title = "3" + number, f"{lines[0][1]}·{lines[0][0][-3:]}"
                self._add("tmall_orders", [(no, account("tmall", i), "********", paid, paid, "交易成功",
                                            chunk.tmall_phone(j), local(ts - 60), local(ts), title, sum(q for _, _, q, _ in lines),
                                            "'null", 0)])
                self._add("tmall_items", ((no, sku, price, q, "", "", "", "", "交易成功", sku) for sku, _, q, price in lines))
                if k % UNPAID_EVERY == 0:
                    self._add("tmall_orders", [("4" + number, account("tmall", i), "********", paid, 0, "等待买家付款",
                                                chunk.tmall_phone(j), local(ts - 60), "", title, 1, "'null", 0)])
            elif channel == "jd":
                self._add("jd", ((f"2{number}", sku, f"{cat}·{sku[-3:]}", q, price, paid, local(ts - 120), local(ts), "完成",
                                  account("jd", i), str(chunk.phones[j])) for sku, cat, q, price in lines))
            elif channel == "pos":
                no = f"1{number}"
                self._add("pos_orders", [(no, "NA", paid, local(ts - 300, "%Y/%m/%d %H:%M:%S"),
                                          local(ts, "%Y/%m/%d %H:%M:%S"), shops[chunk.home[j]], 1, str(chunk.phones[j]), "NA")])
                self._add("pos_lines", ((no, sku, f"{cat}·{sku[-3:]}", cat, q, price, local(ts - 300, "%Y/%m/%d %H:%M:%S"), "NA")
                                        for sku, cat, q, price in lines))
            else:
                self._add("wechat", [{"order_no": f"wx{number}", "unionid": account("wechat", i), "openid": f"o{i:x}",
                                      "phone": str(chunk.phones[j]), "status": "SUCCESS", "paid_at": local(ts),
                                      "total_fee": round(paid * 100),
                                      "items": [{"sku": sku, "category": cat, "qty": q, "price_fen": round(price * 100)}
                                                for sku, cat, q, price in lines]}])

    def products(self, sku_price: np.ndarray, sku_category: np.ndarray, sold: np.ndarray) -> None:
        """The catalogue; every second of the dozen best sellers is a member deal (15 % off)."""
        deals = set(np.argsort(-sold, kind="stable")[:12:2].tolist())
        rows = []
        for s, price in enumerate(sku_price.tolist()):
            category = self.categories[sku_category[s]]
            member = round(price * 0.85) if s in deals else ""
            rows.append((sku_name(s), f"69{s:011d}", f"{category}·{sku_name(s)[-3:]}", self.brand, category, price, member))
        write_csv(self.out / "products.csv", ("商品编码", "条码", "商品名称", "品牌", "类目", "零售价", "会员价"), rows)
        self.imports.insert(1, Import(self.out / "products.csv", kind="products"))

    def close(self) -> None:
        """Write the member list and the channel exports, and list them for import after the master data."""
        out, rows = self.out, self._rows
        write_csv(out / "crm_members.csv", ("会员卡号", "手机号", "姓名", "性别", "会员等级", "开卡门店", "开卡日期", "会员状态"),
                  rows.get("crm", []))
        self.imports.append(Import(out / "crm_members.csv", channel="members"))
        if rows.get("tmall_orders"):
            write_csv(out / "订单报表.csv", ("订单编号", "买家会员名", "买家支付宝账号", "总金额", "买家实际支付金额", "订单状态",
                                         "联系手机", "订单创建时间", "订单付款时间 ", "宝贝标题 ", "宝贝总数量", "订单备注", "退款金额"),
                      rows["tmall_orders"])
            write_csv(out / "宝贝报表.csv", ("订单编号", "标题", "价格", "购买数量", "外部系统编号", "商品属性", "套餐信息", "备注",
                                         "订单状态", "商家编码"), rows["tmall_items"])
            self.imports.append(Import(out / "订单报表.csv", channel="tmall", companion=out / "宝贝报表.csv"))
        if rows.get("jd"):
            write_csv(out / "jd_orders.csv", ("订单号", "商品ID", "商品名称", "订购数量", "京东价", "应付金额", "下单时间",
                                              "付款确认时间", "订单状态", "下单帐号", "联系电话"), rows["jd"], encoding="gbk")
            self.imports.append(Import(out / "jd_orders.csv", channel="jd"))
        if rows.get("pos_orders"):
            write_csv(out / "meal_order_info.csv", ("order_id", "emp_id", "accounts_payable", "use_start_time", "lock_time",
                                                    "org_id", "order_status", "phone", "name"), rows["pos_orders"])
            write_csv(out / "meal_order_detail.csv", ("order_id", "dishes_id", "dishes_name", "parent_class_name", "counts",
                                                      "amounts", "place_order_time", "emp_id"), rows["pos_lines"])
            self.imports.append(Import(out / "meal_order_info.csv", channel="pos", companion=out / "meal_order_detail.csv"))
        if rows.get("wechat"):
            (out / "wechat_orders.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows["wechat"]), encoding="utf-8")
            self.imports.append(Import(out / "wechat_orders.jsonl", channel="wechat"))
        self._rows = {}
