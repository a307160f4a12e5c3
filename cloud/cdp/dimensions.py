"""The segment dimensions (圈人维度): a declared catalogue and its compiler to parameterised SQL.

A dimension is one named field in one window/scope family, as ``CATALOGUE`` lists it (name, group,
type, operators, required parameters, example). A segment names it in a ``dim`` node::

    {"dim": {"name": "bought.category.days", "scope": "护肤", "days": 90}}
    {"dim": {"name": "order_amount.channel.between", "scope": "tmall", "from": "2026-01-01",
             "to": "2026-03-31", "op": ">=", "value": 500}}
    {"dim": {"name": "age_band", "op": "in", "value": ["25-29", "30-34"]}}
    {"dim": {"name": "last_visit.store", "scope": "sh-001", "op": "after", "value": "2026-11-01"}}

Families:

* **attributes**, the person's surviving values (``person_profiles pp``, written by
  ``survivorship.store``; not the head record's, which after a merge may be an older Tmall buyer's):
  gender, age and age band, birthday month, points, home store and its city / city tier
  (``stores``), tier, face consent (as it counts: the head's or a proven one); tags
  (``person_tags``, every record's); sign-up date (the head record's creation); computed stats
  (``person_stats``, copied into the profile row: ``survivorship.SEGMENT_STATS``): lifecycle, value tier.
* **value** (the same copied stats): R/F/M scores and their sum, LTV, lifetime orders, average order
  value, price band, favourite channel and store, top category, repurchase cycle.
* **purchase behaviour** over ``order_lines`` (a refund is a line with negative quantity and
  amount): ``bought``, ``not_bought``, ``refunded``, ``order_count``, ``order_amount``, ``units``,
  each by any / channel / store / category / SKU, in the last N days (``.days``) or between two
  local dates (``.between``); ``first_purchase`` and ``last_purchase`` date by the same scopes.
  **Refunds are excluded from "bought"**: bought means the net units of the matching lines in the
  window are above zero, so an order refunded in the window is not bought, and ``order_amount`` /
  ``units`` are net of refunds; ``order_count`` counts distinct sale orders.
* **store behaviour** over ``visits`` (a corrected "不是本人" visit belongs to nobody): visits,
  visits recognised by face, by Wi-Fi, greeted, served (feedback), by any store or one store, in
  the last N days or between dates; first and last visit date by any or one store.

Numbers that zero satisfies (``order_count < 2``, ``visits = 0``) include people with no rows at
all: such a condition compiles to "not among the people whose total fails it". Dates are local
days in the brand's zone (Asia/Shanghai); "between" includes both days. Every value the caller gives
is a bound parameter; the SQL text comes only from this module's fixed fragments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.cdp import purchases
from cloud.cdp.lifecycle import LIFECYCLE_STAGES, VALUE_TIERS
from cloud.cdp.purchases import LOCAL

PERSON = "COALESCE(m.merged_into, m.id)"

Type = Literal["enum", "number", "date", "bool", "text"]
OPS: dict[str, tuple[str, ...]] = {
    "enum": ("in", "not_in"),
    "text": ("in", "not_in"),
    "number": ("=", "!=", ">", ">=", "<", "<=", "between"),
    "date": ("before", "after", "between", "on"),
    "bool": ("is",),
}
AGE_BANDS = ("<18", "18-24", "25-29", "30-34", "35-39", "40-49", "50+")
_AGE_EDGES = ((0, 17, "<18"), (18, 24, "18-24"), (25, 29, "25-29"), (30, 34, "30-34"), (35, 39, "35-39"),
              (40, 49, "40-49"), (50, 200, "50+"))


class DimSpec(BaseModel):
    """One ``dim`` node: the dimension's name, its scope value and window when it has them, an
    operator and a value (bool dimensions default to ``is true``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    op: str | None = None
    value: Any = None
    scope: str | None = Field(default=None, min_length=1, max_length=100,
                              description="the channel, store, category, SKU or tag name the dimension is scoped to")
    days: int | None = Field(default=None, ge=1, le=3650)
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None


class DimensionError(ValueError):
    pass


@dataclass(frozen=True)
class Dimension:
    name: str
    group: str  # attribute | value | purchase | store
    type: Type
    label: str  # Chinese, for HQ's picker
    description: str
    scope: str | None = None  # channel | store | category | sku | tag
    window: Literal["days", "between"] | None = None
    enum: tuple[str, ...] = ()
    example: dict = field(default_factory=dict)
    # compile: (spec, as_of, params) -> SQL boolean over the person p (its profile row pp)
    compile: Callable[..., str] = field(default=lambda *_: "1 = 0", repr=False)
    profile: bool = False

    @property
    def operators(self) -> tuple[str, ...]:
        return OPS[self.type]

    def describe(self) -> dict:
        return {"name": self.name, "group": self.group, "type": self.type, "label": self.label,
                "description": self.description, "operators": list(self.operators), "scope": self.scope,
                "window": self.window, "values": list(self.enum) or None, "example": {"dim": self.example}}


# ---------------------------------------------------------------------------------------------------
# operators


def _check_value(dim: Dimension, op: str, value: Any) -> Any:
    t = dim.type
    if t == "bool":
        if value is None:
            return True
        if not isinstance(value, bool):
            raise DimensionError(f"{dim.name}: value must be true or false")
        return value
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise DimensionError(f"{dim.name}: between takes [low, high]")
        return [_scalar(dim, v) for v in value]
    if op in ("in", "not_in"):
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > 100:
            raise DimensionError(f"{dim.name}: {op} takes a list of 1-100 values")
        return [_scalar(dim, v) for v in values]
    return _scalar(dim, value)


def _scalar(dim: Dimension, v: Any) -> Any:
    if dim.type == "number":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            raise DimensionError(f"{dim.name}: value must be a number")
        return v
    if dim.type == "date":
        try:
            return date.fromisoformat(str(v))
        except ValueError:
            raise DimensionError(f"{dim.name}: value must be a date YYYY-MM-DD") from None
    if not isinstance(v, (str, int)) or isinstance(v, bool) or len(str(v)) > 100:
        raise DimensionError(f"{dim.name}: values are strings of at most 100 characters")
    if dim.enum and str(v) not in dim.enum:
        raise DimensionError(f"{dim.name}: {v!r} is not one of {', '.join(dim.enum)}")
    return str(v)


_CMP = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def _number_test(expr: str, op: str, value: Any, params: list) -> str:
    if op == "between":
        params += value
        return f"{expr} BETWEEN ? AND ?"
    params.append(value)
    return f"{expr} {_CMP[op]} ?"


def _zero_passes(op: str, value: Any) -> bool:
    if op == "between":
        return value[0] <= 0 <= value[1]
    return {"=": 0 == value, "!=": 0 != value, ">": 0 > value, ">=": 0 >= value, "<": 0 < value,
            "<=": 0 <= value}[op]


def _enum_test(expr: str, op: str, values: list, params: list) -> str:
    params += values
    marks = ", ".join("?" for _ in values)
    return f"{expr} IN ({marks})" if op == "in" else f"(COALESCE({expr}, '') NOT IN ({marks}))"


def _day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL)


def _date_bounds(op: str, value: Any) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the instants a date operator accepts."""
    if op == "before":
        return None, _day_start(value)
    if op == "after":
        return _day_start(value) + timedelta(days=1), None
    if op == "on":
        return _day_start(value), _day_start(value) + timedelta(days=1)
    return _day_start(value[0]), _day_start(value[1]) + timedelta(days=1)  # between, both days included


def _window(spec: DimSpec, dim: Dimension, as_of: datetime) -> tuple[datetime | None, datetime | None]:
    if dim.window == "days":
        if spec.days is None:
            raise DimensionError(f"{dim.name}: give days (the last N days)")
        return as_of - timedelta(days=spec.days), None
    if dim.window == "between":
        if spec.from_ is None or spec.to is None or spec.to < spec.from_:
            raise DimensionError(f"{dim.name}: give from and to (local dates, from <= to)")
        return _day_start(spec.from_), _day_start(spec.to) + timedelta(days=1)
    return None, None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------------------------------
# compilers by family


def _expr_dim(expr: str, *, expr_params: Callable[[datetime], list] | None = None) -> Callable:
    """A dimension read from one scalar SQL expression over p / pp."""

    def compile(spec: DimSpec, as_of: datetime, params: list, dim: Dimension) -> str:
        op, value = spec.op or "", spec.value
        head = list(expr_params(as_of)) if expr_params else []
        if dim.type == "bool":
            params += head
            return f"({expr} = 1)" if value else f"(COALESCE({expr}, 0) = 0)"
        if dim.type == "number":
            params += head
            return f"({_number_test(expr, op, value, params)})"
        if dim.type == "date":  # expr is ISO text (UTC) here
            start, end = _date_bounds(op, value)
            parts = []
            for bound, cmp in ((start, ">="), (end, "<")):
                if bound is not None:
                    params += head
                    params.append(_iso(bound))
                    parts.append(f"{expr} {cmp} ?")
            return "(" + " AND ".join(parts) + ")"
        params += head
        return f"({_enum_test(expr, op, value, params)})"

    return compile


#: per measure: what ``purchases`` sums per person
_PURCHASE_MEASURE: dict[str, purchases.Measure] = {
    "bought": "qty", "not_bought": "qty", "units": "qty", "order_amount": "amount",
    "order_count": "orders", "refunded": "refunds", "first_purchase": "first", "last_purchase": "last",
}


def _purchase_dim(measure: str) -> Callable:
    def compile(spec: DimSpec, as_of: datetime, params: list, dim: Dimension,
                role: purchases.Role = "set") -> str:
        op = spec.op or ""
        if dim.scope is not None and spec.scope is None:
            raise DimensionError(f"{dim.name}: give scope (the {dim.scope})")
        start, end = _window(spec, dim, as_of)

        def holds(test: purchases.Test) -> str:  # the persons' sums from the person facts (and edge days' lines)
            return purchases.holds(_PURCHASE_MEASURE[measure], dim.scope, spec.scope,
                                   None if start is None else int(start.timestamp()),
                                   None if end is None else int(end.timestamp()), test, params, role=role)

        if measure in ("bought", "not_bought", "refunded"):
            inner = holds(lambda agg, _: f"{agg} > 0")
            return f"(NOT {inner})" if _no_rows_pass(measure, spec) else inner
        if measure in ("first_purchase", "last_purchase"):
            lo, hi = _date_bounds(op, spec.value)

            def dated(agg: str, args: list) -> str:
                having: list[str] = []
                for bound, cmp in ((lo, ">="), (hi, "<")):
                    if bound is not None:
                        having.append(f"{agg} {cmp} ?")
                        args.append(int(bound.timestamp()))
                return " AND ".join(having)

            return holds(dated)
        if _no_rows_pass(measure, spec):
            return f"(NOT {holds(lambda agg, args: f'NOT ({_number_test(agg, op, spec.value, args)})')})"
        return holds(lambda agg, args: _number_test(agg, op, spec.value, args))

    return compile


def _no_rows_pass(measure: str, spec: DimSpec) -> bool:
    """Whether a person without purchase rows in the window passes a summed purchase condition (did not
    buy, had no refund, a number that zero meets): the condition is then asked as the persons who fail
    it left out (``_purchase_dim``), and it cannot drive an AND (``needs_rows``)."""
    if measure in ("bought", "not_bought", "refunded"):
        return measure == "not_bought" or (measure == "refunded" and spec.value not in (None, True))
    return _zero_passes(spec.op or "", spec.value)


_VISITS = "FROM visits v JOIN members m ON m.id = v.member_id"
_VISIT_KIND = {
    "visits": None,
    "visits_face": "v.signals IN ('face', 'face+wifi')",
    "visits_wifi": "v.signals IN ('wifi', 'face+wifi')",
    "greeted": "v.id IN (SELECT visit_id FROM feedback WHERE action IN ('greeted', 'served', 'sold'))",
    "served": "v.id IN (SELECT visit_id FROM feedback WHERE action IN ('served', 'sold'))",
}


def _visit_dim(measure: str) -> Callable:
    def compile(spec: DimSpec, as_of: datetime, params: list, dim: Dimension) -> str:
        op = spec.op or ""
        where: list[str] = []
        args: list = []
        if dim.scope == "store":
            if spec.scope is None:
                raise DimensionError(f"{dim.name}: give scope (the store)")
            where.append("v.store = ?")
            args.append(spec.scope)
        start, end = _window(spec, dim, as_of)
        if start is not None:
            where.append("v.ts >= ?")
            args.append(_iso(start))
        if end is not None:
            where.append("v.ts < ?")
            args.append(_iso(end))
        if measure in ("first_visit", "last_visit"):
            agg = "MIN(v.ts)" if measure == "first_visit" else "MAX(v.ts)"
            lo, hi = _date_bounds(op, spec.value)
            having: list[str] = []
            hargs: list = []
            for bound, cmp in ((lo, ">="), (hi, "<")):
                if bound is not None:
                    having.append(f"{agg} {cmp} ?")
                    hargs.append(_iso(bound))
            params += args + hargs
            return (f"p.id IN (SELECT {PERSON} {_VISITS} WHERE {' AND '.join(where) or '1 = 1'} "
                    f"GROUP BY {PERSON} HAVING {' AND '.join(having)})")
        kind = _VISIT_KIND[measure]
        if kind:
            where.append(kind)
        group = f"{_VISITS} WHERE {' AND '.join(where) or '1 = 1'} GROUP BY {PERSON}"
        params += args
        if dim.type == "bool":
            inner = f"p.id IN (SELECT {PERSON} {group})"
            return inner if spec.value in (None, True) else f"(NOT {inner})"
        if _zero_passes(op, spec.value):
            failing: list = []
            test = _number_test("COUNT(*)", op, spec.value, failing)
            params += failing
            return f"(p.id NOT IN (SELECT {PERSON} {group} HAVING NOT ({test})))"
        test = _number_test("COUNT(*)", op, spec.value, params)
        return f"p.id IN (SELECT {PERSON} {group} HAVING {test})"

    return compile


def _tag_dim(spec: DimSpec, as_of: datetime, params: list, dim: Dimension) -> str:
    if spec.scope is None:
        raise DimensionError("tag: give scope (the tag's name)")
    params.append(spec.scope)
    if spec.op in (None, "in") and spec.value is None:
        return "p.id IN (SELECT member_id FROM person_tags WHERE tag = ?)"
    params += spec.value
    marks = ", ".join("?" for _ in spec.value)
    inner = f"p.id IN (SELECT member_id FROM person_tags WHERE tag = ? AND value IN ({marks}))"
    return inner if spec.op == "in" else f"(NOT {inner})"


def _store_attr(column: str) -> Callable:
    """City or city tier of the person's home store."""

    def compile(spec: DimSpec, as_of: datetime, params: list, dim: Dimension) -> str:
        params += spec.value
        marks = ", ".join("?" for _ in spec.value)
        inner = f"pp.home_store IN (SELECT id FROM stores WHERE {column} IN ({marks}))"
        return inner if spec.op == "in" else f"(NOT {inner})"

    return compile


def _top_category(spec: DimSpec, as_of: datetime, params: list, dim: Dimension) -> str:
    parts = []
    for v in spec.value:
        params.append(f'%"{v}"%')
        parts.append("pp.top_categories LIKE ?")
    inner = "(" + " OR ".join(parts) + ")"
    return inner if spec.op == "in" else f"(NOT COALESCE({inner}, 0 = 1))"


def _channel_ever(spec: DimSpec, as_of: datetime, params: list, dim: Dimension) -> str:
    params += spec.value
    marks = ", ".join("?" for _ in spec.value)
    inner = (f"p.id IN (SELECT {PERSON} FROM members m WHERE m.source IN ({marks}))")
    return inner if spec.op == "in" else f"(NOT {inner})"


# age from the surviving birthday (YYYY-MM-DD), as of the segment's day
_AGE = ("(? - CAST(substr(pp.birthday, 1, 4) AS INTEGER) - "
        "CASE WHEN substr(pp.birthday, 6, 5) > ? THEN 1 ELSE 0 END)")


def _age_params(as_of: datetime) -> list:
    local = as_of.astimezone(LOCAL)
    return [local.year, local.strftime("%m-%d")]


_AGE_BAND = ("CASE WHEN pp.birthday IS NULL OR pp.birthday = '' THEN NULL "
             + " ".join(f"WHEN {_AGE} BETWEEN {lo} AND {hi} THEN '{band}'" for lo, hi, band in _AGE_EDGES)
             + " END")


def _age_band_params(as_of: datetime) -> list:
    return _age_params(as_of) * len(_AGE_EDGES)


# ---------------------------------------------------------------------------------------------------
# the catalogue

_SCOPES = {None: "全部", "channel": "渠道", "store": "门店", "category": "品类", "sku": "商品"}
_SCOPE_EXAMPLE = {"channel": "tmall", "store": "sh-001", "category": "护肤", "sku": "SKU-001"}
_PURCHASE = {
    "bought": ("bool", "购买过", "bought (net units > 0: refunded purchases do not count)"),
    "not_bought": ("bool", "未购买", "did not buy (no net purchase)"),
    "refunded": ("bool", "有退款", "had a refund"),
    "order_count": ("number", "订单数", "distinct sale orders"),
    "order_amount": ("number", "消费金额", "yuan spent, net of refunds"),
    "units": ("number", "购买件数", "units bought, net of refunds"),
}
_VISIT = {
    "visits": ("number", "到店次数", "visits (corrected '不是本人' visits excluded)"),
    "visits_face": ("number", "人脸识别到店", "visits recognised by face"),
    "visits_wifi": ("number", "Wi-Fi识别到店", "visits recognised by Wi-Fi"),
    "greeted": ("bool", "被接待问候", "a visit an assistant greeted, served or sold to"),
    "served": ("bool", "被服务", "a visit an assistant served or sold to"),
}


def _build() -> dict[str, Dimension]:
    dims: list[Dimension] = []

    def add(name: str, group: str, type_: Type, label: str, description: str, compile: Callable, *,
            example: dict, enum: tuple[str, ...] = (), scope: str | None = None, window: str | None = None,
            profile: bool = False) -> None:
        dims.append(Dimension(name, group, type_, label, description, scope, window, enum,  # type: ignore[arg-type]
                              {"name": name, **example}, compile, profile))

    # attributes: the surviving values (person_profiles pp)
    add("gender", "attribute", "enum", "性别", "gender (surviving value)", _expr_dim("pp.gender"), profile=True,
        enum=("female", "male"), example={"op": "in", "value": ["female"]})
    add("age", "attribute", "number", "年龄", "age in years from the birthday",
        _expr_dim(_AGE, expr_params=_age_params), profile=True, example={"op": "between", "value": [25, 34]})
    add("age_band", "attribute", "enum", "年龄段", "age band from the birthday",
        _expr_dim(_AGE_BAND, expr_params=_age_band_params), enum=AGE_BANDS, profile=True,
        example={"op": "in", "value": ["25-29", "30-34"]})
    add("birthday_month", "attribute", "number", "生日月份", "month of the birthday (1-12)",
        _expr_dim("CAST(substr(pp.birthday, 6, 2) AS INTEGER)"), profile=True, example={"op": "=", "value": 12})
    add("signed_up", "attribute", "date", "注册日期",
        "when the person signed up (surviving value: a CRM or counter sign-up date), else when the person's "
        "head record was created", _expr_dim("COALESCE(pp.signed_up, p.created)"), profile=True,
        example={"op": "after", "value": "2026-01-01"})
    add("points", "attribute", "number", "积分", "points balance (surviving value)", _expr_dim("pp.points"),
        profile=True, example={"op": ">=", "value": 1000})
    add("home_store", "attribute", "enum", "所属门店", "the member's home store (surviving value)",
        _expr_dim("pp.home_store"), profile=True, example={"op": "in", "value": ["sh-001"]})
    add("city", "attribute", "text", "城市", "city of the home store", _store_attr("city"), profile=True,
        example={"op": "in", "value": ["上海"]})
    add("city_tier", "attribute", "text", "城市等级", "city tier of the home store", _store_attr("city_tier"),
        profile=True, example={"op": "in", "value": ["tier1"]})
    add("tier", "attribute", "text", "会员等级", "membership tier (surviving value)", _expr_dim("pp.tier"),
        profile=True, example={"op": "in", "value": ["金卡会员"]})
    add("lifecycle", "attribute", "enum", "生命周期", "lifecycle stage", _expr_dim("pp.lifecycle"), profile=True,
        enum=LIFECYCLE_STAGES,
        example={"op": "in", "value": ["active"]})
    add("value_tier", "attribute", "enum", "价值分层", "RFM value tier", _expr_dim("pp.value_tier"), profile=True,
        enum=VALUE_TIERS, example={"op": "in", "value": ["high"]})
    add("tag", "attribute", "text", "标签", "has the tag (scope), optionally with one of the values",
        _tag_dim, scope="tag", example={"scope": "敏感肌"})
    add("consent_face", "attribute", "bool", "人脸授权",
        "consented to face recognition (the head record's consent, or one proven by a code to the phone)",
        _expr_dim("pp.face_consent"), profile=True, example={"value": True})
    add("channel", "attribute", "text", "来源渠道", "has a record from the channel (member, tmall, jd, wechat, pos...)",
        _channel_ever, example={"op": "in", "value": ["tmall"]})

    # value
    for name, expr, label, description, sample in (
        ("r_score", "pp.r", "R分", "recency score 1-5", {"op": ">=", "value": 4}),
        ("f_score", "pp.f", "F分", "frequency score 1-5", {"op": ">=", "value": 4}),
        ("m_score", "pp.m", "M分", "monetary score 1-5", {"op": ">=", "value": 4}),
        ("rfm_score", "(pp.r + pp.f + pp.m)", "RFM总分", "R + F + M (3-15)", {"op": ">=", "value": 12}),
        ("ltv", "pp.ltv", "累计消费", "lifetime value, yuan", {"op": ">=", "value": 5000}),
        ("lifetime_orders", "pp.orders", "累计订单数", "orders over the person's life", {"op": ">=", "value": 3}),
        ("avg_order_value", "(CASE WHEN pp.orders > 0 THEN pp.ltv / pp.orders END)", "客单价",
         "LTV / orders, yuan", {"op": ">=", "value": 300}),
        ("repurchase_cycle", "pp.cycle_days", "复购周期", "median days between orders", {"op": "<=", "value": 60}),
    ):
        add(name, "value", "number", label, description, _expr_dim(expr), profile=True, example=sample)
    add("price_band", "value", "enum", "价格带", "usual unit price band", _expr_dim("pp.price_band"), profile=True,
        enum=("low", "mid", "high"), example={"op": "in", "value": ["high"]})
    add("fav_channel", "value", "text", "偏好渠道", "channel with the most spend", _expr_dim("pp.fav_channel"),
        profile=True, example={"op": "in", "value": ["tmall"]})
    add("fav_store", "value", "text", "偏好门店", "store with the most spend", _expr_dim("pp.fav_store"),
        profile=True, example={"op": "in", "value": ["sh-001"]})
    add("top_category", "value", "text", "偏好品类", "one of the top 3 categories by spend", _top_category,
        profile=True, example={"op": "in", "value": ["护肤"]})

    # purchase behaviour: measure x scope x window, and first/last purchase by scope
    for measure, (type_, label, description) in _PURCHASE.items():
        for scope, scope_label in _SCOPES.items():
            for window in ("days", "between"):
                name = f"{measure}.{scope or 'any'}.{window}"
                example: dict = {"days": 90} if window == "days" else {"from": "2026-01-01", "to": "2026-03-31"}
                if scope:
                    example["scope"] = _SCOPE_EXAMPLE[scope]
                if type_ == "number":
                    example |= {"op": ">=", "value": 2 if measure != "order_amount" else 500}
                when = "近N天" if window == "days" else "时间段内"
                add(name, "purchase", type_, f"{when}{scope_label}{label}", f"{description}, by {scope or 'any'}",  # type: ignore[arg-type]
                    _purchase_dim(measure), scope=scope, window=window, example=example)
    for measure, label in (("first_purchase", "首次购买日期"), ("last_purchase", "最近购买日期")):
        for scope, scope_label in _SCOPES.items():
            dated: dict = {"op": "after", "value": "2026-06-01"} | ({"scope": _SCOPE_EXAMPLE[scope]} if scope else {})
            add(f"{measure}.{scope or 'any'}", "purchase", "date", f"{scope_label}{label}",
                f"{measure.replace('_', ' ')} date, by {scope or 'any'}", _purchase_dim(measure), scope=scope,
                example=dated)

    # store behaviour
    for measure, (type_, label, description) in _VISIT.items():
        for scope in (None, "store"):
            for window in ("days", "between"):
                name = f"{measure}.{scope or 'any'}.{window}"
                example = {"days": 30} if window == "days" else {"from": "2026-11-01", "to": "2026-11-30"}
                if scope:
                    example["scope"] = "sh-001"
                if type_ == "number":
                    example |= {"op": ">=", "value": 2}
                when = "近N天" if window == "days" else "时间段内"
                add(name, "store", type_, f"{when}{'本门店' if scope else ''}{label}",  # type: ignore[arg-type]
                    f"{description}, by {scope or 'any store'}", _visit_dim(measure), scope=scope, window=window,
                    example=example)
    for measure, label in (("first_visit", "首次到店日期"), ("last_visit", "最近到店日期")):
        for scope in (None, "store"):
            dated = {"op": "after", "value": "2026-11-01"} | ({"scope": "sh-001"} if scope else {})
            add(f"{measure}.{scope or 'any'}", "store", "date", f"{'本门店' if scope else ''}{label}",
                f"{measure.replace('_', ' ')} date, by {scope or 'any store'}", _visit_dim(measure), scope=scope,
                example=dated)
    return {d.name: d for d in dims}


CATALOGUE: dict[str, Dimension] = _build()


def catalogue() -> list[dict]:
    return [d.describe() for d in CATALOGUE.values()]


def validate(spec: DimSpec) -> DimSpec:
    """The node with its operator and value checked against its dimension (DimensionError if not)."""
    dim = CATALOGUE.get(spec.name)
    if dim is None:
        raise DimensionError(f"unknown dimension {spec.name!r} (GET /v1/segments/dimensions lists them)")
    op = spec.op or ("is" if dim.type == "bool" else None)
    if dim.name == "tag":
        op = spec.op or "in"
        if op not in ("in", "not_in"):
            raise DimensionError("tag: op is in or not_in")
        if spec.scope is None:
            raise DimensionError("tag: give scope (the tag's name)")
        value = None if spec.value is None else _check_value(dim, op, spec.value)
        return spec.model_copy(update={"op": op, "value": value})
    if op not in dim.operators:
        raise DimensionError(f"{dim.name}: op must be one of {', '.join(dim.operators)}")
    if dim.scope is not None and spec.scope is None:
        raise DimensionError(f"{dim.name}: give scope (the {dim.scope})")
    if dim.scope is None and spec.scope is not None:
        raise DimensionError(f"{dim.name}: takes no scope")
    if dim.window is None and (spec.days is not None or spec.from_ is not None or spec.to is not None):
        raise DimensionError(f"{dim.name}: takes no window")
    if dim.window == "days" and (spec.days is None or spec.from_ is not None):
        raise DimensionError(f"{dim.name}: give days (the last N days)")
    if dim.window == "between" and (spec.from_ is None or spec.to is None or spec.days is not None
                                    or spec.to < spec.from_):
        raise DimensionError(f"{dim.name}: give from and to (local dates, from <= to)")
    if dim.type != "bool" and spec.value is None:
        raise DimensionError(f"{dim.name}: give a value")
    return spec.model_copy(update={"op": op, "value": _check_value(dim, op, spec.value)})


def compile(spec: DimSpec, as_of: datetime, params: list, *, role: purchases.Role = "set") -> str:
    """The dimension's SQL boolean over the person ``p``; ``role``: how a purchase condition is asked
    (``purchases.holds``; to ``drive``, the SELECT of the persons that pass instead)."""
    dim = CATALOGUE[spec.name]
    if dim.group == "purchase":
        return dim.compile(spec, as_of, params, dim, role=role)
    return dim.compile(spec, as_of, params, dim)


def summed(spec: DimSpec) -> bool:
    """A purchase condition over a sum of the person facts (not a first/last date, not a SKU, which
    the lines answer): one ``purchases.holds`` can look up per person."""
    dim = CATALOGUE[spec.name]
    return dim.group == "purchase" and dim.window is not None and dim.scope != "sku"


def needs_rows(spec: DimSpec) -> bool:
    """Only persons with purchases in the window pass (bought, had a refund, a number zero fails)."""
    return not _no_rows_pass(spec.name.split(".")[0], spec)


def breadth(spec: DimSpec) -> tuple[bool, int]:
    """How many purchase rows a condition's window reads, roughly, to rank them: the any scope
    (every line) above a channel, store or category, then the longer window."""
    days = spec.days if spec.days is not None else (spec.to - spec.from_).days + 1 if spec.to and spec.from_ else 0
    return CATALOGUE[spec.name].scope is None, days


def uses_profile(spec: DimSpec) -> bool:
    return CATALOGUE[spec.name].profile


# ---------------------------------------------------------------------------------------------------
# portrait facets: one expression per person (surviving profile and stats pp, home store hs)

FACETS: dict[str, tuple[str, Callable[[datetime], list]]] = {
    "city_tier": ("hs.city_tier", lambda _: []),
    "age_band": (_AGE_BAND, _age_band_params),
    "gender": ("pp.gender", lambda _: []),
    "channel": ("pp.fav_channel", lambda _: []),
    "tier": ("pp.tier", lambda _: []),
    "lifecycle": ("pp.lifecycle", lambda _: []),
}
PROFILE_JOIN = "LEFT JOIN person_profiles pp ON pp.member_id = p.id"
FACET_JOINS = f"{PROFILE_JOIN} LEFT JOIN stores hs ON hs.id = pp.home_store"
