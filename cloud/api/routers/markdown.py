"""A store's perishables markdown: set a product's expiry date and floor price, read the plan.

The runtime's ``MarkdownService`` acts on the same plan every pricing period; the GET route shows
what it would charge now, the likely prices ahead and the changes already made today, so a store
manager can see why a label shows 临期7折. Writes: HQ admins everywhere, a store manager their own
store; reads: every reader role (a store manager their own store).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from cloud.api.deps import Counter, Reader, RuntimeDep, own_store, valid_id
from cloud.api.markdown_schemas import MarkdownItem, MarkdownPlan, PerishableIn, PriceChangeOut, SchedulePoint
from cloud.api.schemas import Error
from cloud.pricing import markdown_runner, price_changes

router = APIRouter(prefix="/stores", tags=["markdown"])


@router.get("/{store}/markdown", response_model=MarkdownPlan, responses={403: {"model": Error}})
def markdown_plan(store: str, runtime: RuntimeDep, principal: Reader) -> MarkdownPlan:
    store = own_store(principal, store)
    settings = runtime.settings
    plan = markdown_runner.plan_store(runtime.db, store, datetime.now(UTC),
                                      max_changes_per_day=settings.markdown_max_changes_per_day,
                                      elasticity=settings.markdown_elasticity)
    day = plan[0].day if plan else ""
    period = plan[0].period if plan else 0
    changes = price_changes.made_on(runtime.db, store, day)
    return MarkdownPlan(
        store=store, day=day, period=period, changes_today=[PriceChangeOut(**c) for c in changes],
        items=[MarkdownItem(
            sku=i.sku, name=i.name, status=i.status, expires_on=i.expires_on, days_to_expiry=i.days_to_expiry,
            list_price=i.list_price, floor_price=i.floor_price, current_price=i.current_price, price_now=i.price,
            stock=i.stock, sales_rate=i.sales_rate, changes_today=i.changes_today,
            max_changes_per_day=settings.markdown_max_changes_per_day,
            schedule=[SchedulePoint(**p.__dict__) for p in i.schedule],
        ) for i in plan])


@router.put("/{store}/markdown/{sku}", status_code=status.HTTP_204_NO_CONTENT,
            responses={403: {"model": Error}, 422: {"model": Error}})
def set_perishable(store: str, sku: str, body: PerishableIn, runtime: RuntimeDep, principal: Counter) -> None:
    """Mark the store's stock of ``sku`` as perishable: its last selling day and its floor price."""
    store = own_store(principal, store)
    valid_id("sku", sku)
    markdown_runner.set_perishable(runtime.db, store, sku, body.expires_on, body.floor_price,
                                   actor=principal.name)
