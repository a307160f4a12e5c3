"""Loyalty points (issue 21): balance and tier, full history, redemption at the till and on the guide
screen (directly, or by a code the member's phone shows), adjustments by hand, the ledger's check."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, status

from cloud.api.auth import Principal
from cloud.api.deps import Admin, Counter, HqReader, PagingDep, Reader, RuntimeDep, own_store, person_for, scoped_store
from cloud.api.loyalty_schemas import (
    AdjustIn,
    CodeIn,
    CodeOut,
    CodeRedeemIn,
    CouponRedeemIn,
    HistoryRow,
    IssueIn,
    LedgerCheck,
    MovementOut,
    PointsOut,
    RedeemIn,
    TemplateIn,
)
from cloud.api.schemas import Error, Page
from cloud.loyalty import balances, coupons, ledger

router = APIRouter(prefix="/loyalty", tags=["loyalty"])
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": Error}, 403: {"model": Error}, 409: {"model": Error}}


def _store(principal: Principal, store: str | None) -> str | None:
    if store is None:
        return scoped_store(principal)
    return own_store(principal, store)


def _out(moved: ledger.Movement) -> MovementOut:
    return MovementOut(**asdict(moved))


@router.get("/members/{member_id}", response_model=PointsOut, responses=_ERRORS)
def points(member_id: str, runtime: RuntimeDep, principal: Reader) -> PointsOut:
    """The person's balance, what expires soon, and the tier's benefits."""
    person = person_for(runtime, principal, member_id)
    found = balances.balance(runtime.db, person) or {"balance": 0, "expiring": 0, "expires_on": None}
    tier = ledger.tier_of(runtime.db, ledger.POOL, person)
    return PointsOut(member_id=member_id, person=person, tier=tier["tier"], multiplier=tier["multiplier"],
                     discount=tier["discount"], **found)


@router.get("/members/{member_id}/history", response_model=Page[HistoryRow], responses=_ERRORS)
def history(member_id: str, runtime: RuntimeDep, principal: Reader, paging: PagingDep) -> Page[HistoryRow]:
    """Every movement of the person's points, newest first."""
    person = person_for(runtime, principal, member_id)
    rows = ledger.history(runtime.db, person, limit=paging.limit, offset=paging.offset)
    return Page(items=[HistoryRow(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.post("/members/{member_id}/redemptions", response_model=MovementOut, status_code=status.HTTP_201_CREATED,
             responses=_ERRORS)
def redeem(member_id: str, body: RedeemIn, runtime: RuntimeDep, principal: Counter) -> MovementOut:
    """Spend points at a till or on the guide screen; 409 ``insufficient_points`` when the balance is short."""
    person = person_for(runtime, principal, member_id)
    return _out(ledger.redeem(runtime.db, person, body.points, request_id=body.request_id,
                              store=_store(principal, body.store), channel=body.channel))


@router.post("/members/{member_id}/adjustments", response_model=MovementOut, status_code=status.HTTP_201_CREATED,
             responses=_ERRORS)
def adjust(member_id: str, body: AdjustIn, runtime: RuntimeDep, principal: Admin) -> MovementOut:
    """A correction by hand, with its reason and who made it (never below a zero balance)."""
    person = person_for(runtime, principal, member_id)
    return _out(ledger.adjust(runtime.db, person, body.points, request_id=body.request_id, reason=body.reason,
                              actor=principal.name))


@router.post("/members/{member_id}/codes", response_model=CodeOut, status_code=status.HTTP_201_CREATED,
             responses=_ERRORS)
def issue_code(member_id: str, body: CodeIn, runtime: RuntimeDep, principal: Counter) -> CodeOut:
    """A single-use code for the member's phone to show (as a QR) at the till or the guide screen."""
    person = person_for(runtime, principal, member_id)
    return CodeOut(**ledger.issue_code(runtime.db, person, body.points))


@router.post("/codes/{code}/redemption", response_model=MovementOut, responses=_ERRORS)
def redeem_code(code: str, body: CodeRedeemIn, runtime: RuntimeDep, principal: Counter) -> MovementOut:
    """The till or the guide screen takes the member's code: the points are spent once."""
    return _out(ledger.redeem_code(runtime.db, code, store=_store(principal, body.store), channel=body.channel))


@router.post("/orders/{order_id}", response_model=MovementOut | None, responses=_ERRORS)
def post_order(order_id: str, runtime: RuntimeDep, principal: Admin) -> MovementOut | None:
    """Post an order or refund now rather than at the next scheduler pass (null: not a member's order)."""
    moved = ledger.post_order(runtime.db, order_id)
    return None if moved is None else _out(moved)


@router.get("/check", response_model=LedgerCheck)
def check(runtime: RuntimeDep, principal: HqReader) -> LedgerCheck:
    """The ledger's invariants (all but entries_sum count violations; entries_sum is 0 when balanced)."""
    return LedgerCheck(**ledger.check(runtime.db))


@router.post("/coupon-templates", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
def add_template(body: TemplateIn, runtime: RuntimeDep, principal: Admin) -> dict:
    """A coupon template: amount off, percent off or a gift; least spend, days valid, store and channel scope."""
    return coupons.add_template(runtime.db, actor=principal.name, **body.model_dump())


@router.post("/coupons", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
def issue_coupon(body: IssueIn, runtime: RuntimeDep, principal: Counter) -> dict:
    """Issue a coupon to a member: by hand, from the guide screen (a store manager's key), a campaign or a journey."""
    person = person_for(runtime, principal, body.member_id)
    store = scoped_store(principal)
    issued_by = body.issued_by or (f"screen:{store}" if store else f"api:{principal.name}")
    return coupons.issue(runtime.db, body.template_id, person, issued_by=issued_by, for_order=body.for_order)


@router.post("/coupons/{code}/redemption", responses=_ERRORS)
def redeem_coupon(code: str, body: CouponRedeemIn, runtime: RuntimeDep, principal: Counter) -> dict:
    """Use a coupon once at the till or on the screen: its discount or gift and what issued it; 409 with
    the reason when refused (coupon_used, coupon_wrong_store, coupon_void_after_refund, ...)."""
    person = person_for(runtime, principal, body.member_id) if body.member_id else None
    return coupons.redeem(runtime.db, code, store=_store(principal, body.store), channel=body.channel,
                          amount=body.amount, person=person, order_id=body.order_id)


@router.get("/members/{member_id}/coupons", responses=_ERRORS)
def member_coupons(member_id: str, runtime: RuntimeDep, principal: Reader) -> list[dict]:
    return coupons.of_person(runtime.db, person_for(runtime, principal, member_id))


@router.get("/coupon-attribution")
def coupon_attribution(runtime: RuntimeDep, principal: HqReader) -> list[dict]:
    """Per issuer (campaign, journey, screen, by hand): coupons issued, redeemed and the discount given."""
    return coupons.attribution(runtime.db)
