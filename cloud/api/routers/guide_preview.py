"""Previews of a member's guide card: the recommendations and the sales script an arrival at a
given store would show now, so HQ can check a template or a catalogue change without waiting for
the member to walk in.

Same roles as the members router (HQ roles read anyone, a store manager their store's customers
and only for their own store). A preview is not a card: no visit, and the script's A/B exposure
is not counted in the template outcomes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api.auth import Principal
from cloud.api.deps import Reader, RuntimeDep, check_store, person_for, valid_store
from cloud.api.guide_schemas import PreviewItem, RecommendationsPreview, ScriptPreview
from cloud.api.openapi_errors import error_responses
from cloud.arrivals.cards import CARD_RECOMMENDATIONS, Advice, advise
from cloud.cdp import members
from cloud.guide.recommend.reasons import Lang
from cloud.runtime import Runtime
from protocol.messages import now

router = APIRouter(prefix="/members", tags=["guide"])

StoreQuery = Annotated[str, Query(description="the store the member would walk into")]
LangQuery = Annotated[Lang, Query(description="zh (default, what the screen shows) or en")]
_ERRORS = error_responses(404, 403, 422)


def _advice(runtime: Runtime, principal: Principal, member_id: str, store: str, lang: Lang, limit: int) -> Advice:
    store = valid_store(store)
    check_store(principal, store)
    person_for(runtime, principal, member_id)
    member = members.member(runtime.db, member_id)
    assert member is not None  # person_for found the person
    return advise(runtime.db, member, store, now(), limit=limit, lang=lang)


@router.get("/{member_id}/recommendations", response_model=RecommendationsPreview, responses=_ERRORS)
def recommendations(
    member_id: str, runtime: RuntimeDep, principal: Reader, store: StoreQuery, lang: LangQuery = "zh",
    limit: Annotated[int, Query(ge=1, le=10, description="the card carries 3")] = CARD_RECOMMENDATIONS,
) -> RecommendationsPreview:
    """What the member's card would recommend at ``store`` now, each with its reason."""
    advice = _advice(runtime, principal, member_id, store, lang, limit)
    items = [PreviewItem(sku=p.sku, name=p.name, category=p.category, price=p.price, kind=p.kind, reason=p.reason(lang))
             for p in advice.picks]
    return RecommendationsPreview(member_id=member_id, store=store, lang=lang, items=items)


@router.get("/{member_id}/script", response_model=ScriptPreview, responses=_ERRORS)
def script(member_id: str, runtime: RuntimeDep, principal: Reader, store: StoreQuery,
           lang: LangQuery = "zh") -> ScriptPreview:
    """The sales script (话术) the member's card would carry at ``store`` now, and which template made it."""
    advice = _advice(runtime, principal, member_id, store, lang, CARD_RECOMMENDATIONS)
    return ScriptPreview(member_id=member_id, store=store, lang=lang, text=advice.script,
                         template_id=advice.template_id, variant=advice.variant)
