"""Real sales as the shape of simulated demand: a POS order-line export read through the product's
own importer into units by day and pricing period (``cloud.synthetic.pos_demand``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cloud.synthetic.pos_demand import HISTORY_DAYS, ItemSales, item_sales

HEADER = ('"detail_id","order_id","dishes_id","logicprn_name","parent_class_name","dishes_name","itemis_add",'
          '"counts","amounts","cost","place_order_time","discount_amt","discount_reason","kick_back","add_inprice",'
          '"add_info","bar_code","picture_file","emp_id"\r\n')
REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "exports" / "pos" / "meal_order_detail.csv"


def _line(n: int, order: int, dish: int, name: str, qty: int, when: str) -> str:
    return f'{n},{order},{dish},NA,NA,"{name}",0,{qty},20,NA,"{when}",NA,NA,NA,0,NA,NA,NA,1248\r\n'


def test_units_by_local_day_and_period_through_the_pos_importer(tmp_path: Path) -> None:
    """The export's layout and quirks (BOM, CRLF, ``NA``, a name quoted over two lines); times are
    the till's local clock, split as the markdown runner splits a day; a slow item is left out."""
    rows = [_line(1, 1, 7, "沙拉", 2, "2016/8/1 11:30:00"), _line(2, 1, 8, "番茄炖牛腩\r\n", 1, "2016/8/1 11:31:00"),
            _line(3, 2, 7, "沙拉", 3, "2016/8/1 19:00:00"), _line(4, 3, 7, "沙拉", 4, "2016/8/3 12:00:00")]
    export = tmp_path / "meal_order_detail.csv"
    export.write_bytes(("\ufeff" + HEADER + "".join(rows)).encode())
    items = item_sales(export, 2, min_per_day=1.0)
    assert [i.sku for i in items] == ["7"]  # dish 8 sold 1 unit in 3 days
    assert items[0].units.tolist() == [[2, 3], [0, 0], [0, 4]]
    assert item_sales(export, 2, min_per_day=3.5) == []  # 9 units in 3 days


def test_a_pattern_is_relative_to_the_week_before() -> None:
    units = np.array([[1.0, 3.0]] * HISTORY_DAYS + [[2.0, 6.0], [0.0, 0.0]])  # a week at 4 a day, then 8, then 0
    item = ItemSales("7", units)
    assert item.pattern(HISTORY_DAYS, 2) == (1.0, 3.0, 0.0, 0.0)  # per period: mean period of the week was 2
    assert item.pattern(HISTORY_DAYS - 1, 1) is None  # less than a week before it
    assert item.pattern(HISTORY_DAYS, 3) is None  # runs past the export
    assert ItemSales("8", np.zeros((9, 2))).pattern(HISTORY_DAYS, 1) is None  # nothing sold that week


@pytest.mark.skipif(not REAL.is_file(), reason=f"no real POS export at {REAL}")
def test_the_real_restaurant_export_gives_a_month_of_item_series() -> None:
    items = item_sales(REAL, 2)
    assert len(items) >= 20 and all(i.units.shape == (31, 2) for i in items)
    # a restaurant: most of a day's sales after noon (dinner), and weekends busier than weekdays
    total = sum(i.units for i in items)
    assert total[:, 1].sum() > 2 * total[:, 0].sum()
    days = total.sum(axis=1)  # 2016-08-01 was a Monday
    assert days[5::7].mean() > 1.5 * days[1::7].mean()  # Saturdays against Tuesdays
