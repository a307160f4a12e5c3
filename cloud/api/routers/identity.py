"""The identity graph: explain a person, merge and split by hand, rules, blocklist, replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Admin, HqReader, PagingDep, RowId, RuntimeDep, api_error, person_for
from cloud.api.schemas import BlockIn, Error, MergeRequest, Page, ResolutionOut, RuleIn, RuleOut, SplitRequest
from cloud.cdp import conflicts, oneid, profile_rewrite, survivorship, tags

router = APIRouter(tags=["identity"])

#: Identifier kinds are lower-case words: ``phone``, ``unionid``, ``tmall_buyer``.
Kind = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,29}$")]
_ERROR_STATUS = {"unknown_link": 404, "unknown_member": 404}


def _resolution(result: oneid.Resolution) -> ResolutionOut:
    return ResolutionOut(records=result.records, links=result.links, rejected=result.rejected,
                         changed_persons=len(result.changed_persons), seconds=round(result.seconds, 3))


def _identity_error(exc: oneid.IdentityError):
    return api_error(_ERROR_STATUS.get(exc.code, status.HTTP_409_CONFLICT), exc.code, str(exc))


@router.get("/members/{member_id}/identity", responses={404: {"model": Error}})
def identity_graph(member_id: str, runtime: RuntimeDep, principal: HqReader) -> dict:
    """Records, identifiers (with blocked reasons), every link with its rule and outcome, sightings."""
    person = person_for(runtime, principal, member_id)
    return {**oneid.graph(runtime.db, person), "attributes": survivorship.explain(runtime.db, person),
            "conflicts": conflicts.of_person(runtime.db, person)}


@router.get("/identity/audit", response_model=Page[dict])
def audit(runtime: RuntimeDep, principal: HqReader, paging: PagingDep,
          person: Annotated[str | None, Query(max_length=64)] = None) -> Page[dict]:
    rows = oneid.audit_trail(runtime.db, person=person, limit=paging.limit, offset=paging.offset)
    return Page(items=rows, limit=paging.limit, offset=paging.offset)


@router.post("/identity/merge", response_model=ResolutionOut, responses={404: {"model": Error}, 409: {"model": Error}})
def merge(body: MergeRequest, runtime: RuntimeDep, principal: Admin) -> ResolutionOut:
    result = oneid.merge(runtime.db, body.a, body.b, actor=principal.name, reason=body.reason)
    tags.refresh(runtime.db, sorted(result.changed_persons))
    return _resolution(result)


@router.post("/identity/links/{link_id}/split", response_model=ResolutionOut, responses={404: {"model": Error}})
def split(link_id: RowId, body: SplitRequest, runtime: RuntimeDep, principal: Admin) -> ResolutionOut:
    result = oneid.split_link(runtime.db, link_id, actor=principal.name, reason=body.reason)
    tags.refresh(runtime.db, sorted(result.changed_persons))
    return _resolution(result)


@router.post("/identity/rebuild", response_model=ResolutionOut)
def rebuild(runtime: RuntimeDep, principal: Admin) -> ResolutionOut:
    """Replay every identifier under the current rules and blocklist."""
    result = oneid.rebuild(runtime.db, actor=principal.name)
    tags.refresh(runtime.db, sorted(result.changed_persons))
    return _resolution(result)


@router.get("/identity/rules", response_model=list[RuleOut])
def list_rules(runtime: RuntimeDep, principal: HqReader) -> list[RuleOut]:
    return [RuleOut(kind=r.kind, hard=r.hard, priority=r.priority, max_per_person=r.max_per_person,
                    max_share=r.max_share, enabled=r.enabled)
            for r in sorted(oneid.rules(runtime.db).values(), key=lambda r: -r.priority)]


@router.put("/identity/rules/{kind}", response_model=RuleOut)
def put_rule(kind: Kind, body: RuleIn, runtime: RuntimeDep, principal: Admin) -> RuleOut:
    """Change a rule; it applies to new records now and to everyone at the next rebuild (replay)."""
    oneid.set_rule(runtime.db, oneid.Rule(kind=kind, **body.model_dump()))
    return RuleOut(kind=kind, **body.model_dump())


@router.get("/identity/blocklist", response_model=list[BlockIn])
def blocklist(runtime: RuntimeDep, principal: HqReader) -> list[BlockIn]:
    return [BlockIn(kind=k, pattern=p, reason=r)
            for k, p, r in oneid.blocklist_entries(runtime.db)]


@router.post("/identity/blocklist", status_code=status.HTTP_201_CREATED, response_model=BlockIn,
             responses={422: {"model": Error}})
def add_block(body: BlockIn, runtime: RuntimeDep, principal: Admin) -> BlockIn:
    oneid.add_block(runtime.db, body.kind, body.pattern, body.reason)
    return body


class ConflictDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: conflicts.Decision = Field(description="merge: one person; keep_apart: never; assign: the value is `to`'s")
    to: str | None = Field(None, max_length=64, description="assign: a record of the side the value belongs to")
    reason: str = Field("", max_length=500)


class SurvivorshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_priority: list[str] | None = Field(None, max_length=20, description="sources, most trusted first")
    rules: dict[str, str] | None = Field(None, description="attribute -> source_priority | most_recent | "
                                                           "most_frequent | first_non_empty (| union for tags)")


_CONFLICT_STATUS = "^(open|merged|kept_apart|assigned|cleared|all)$"


@router.get("/identity/conflicts", response_model=Page[dict])
def list_conflicts(runtime: RuntimeDep, principal: HqReader, paging: PagingDep,
                   status_: Annotated[str, Query(alias="status", pattern=_CONFLICT_STATUS)] = "open") -> Page[dict]:
    """The review queue: strong identifiers that disagree, each item with both sides' evidence."""
    rows, total = conflicts.conflicts(runtime.db, status=None if status_ == "all" else status_,
                                      limit=paging.limit, offset=paging.offset)
    return Page(items=rows, limit=paging.limit, offset=paging.offset, total=total)


@router.get("/identity/conflicts/{conflict_id}", responses={404: {"model": Error}})
def get_conflict(conflict_id: RowId, runtime: RuntimeDep, principal: HqReader) -> dict:
    return conflicts.conflict(runtime.db, conflict_id)


@router.post("/identity/conflicts/{conflict_id}",
             responses={404: {"model": Error}, 409: {"model": Error}, 422: {"model": Error}})
def decide_conflict(conflict_id: RowId, body: ConflictDecision, runtime: RuntimeDep, principal: Admin) -> dict:
    """Merge, keep apart or assign; audited, honoured by every later resolution and rebuild."""
    item, result = conflicts.decide(runtime.db, conflict_id, body.decision, actor=principal.name,
                                    reason=body.reason, to=body.to)
    tags.refresh(runtime.db, sorted(result.changed_persons))
    return {**item, "resolution": _resolution(result).model_dump()}


@router.get("/identity/survivorship")
def get_survivorship(runtime: RuntimeDep, principal: HqReader) -> dict:
    """Which source record's value each profile attribute shows: the brand's rules, and the latest
    rewrite of the stored profiles (``rewrite``, null before any change)."""
    return {**survivorship.config(runtime.db).as_dict(), "attributes": list(survivorship.ATTRIBUTES),
            "rule_names": list(survivorship.RULES), "sources": list(survivorship.SOURCES),
            "rewrite": profile_rewrite.latest(runtime.db)}


@router.put("/identity/survivorship", status_code=status.HTTP_202_ACCEPTED, responses={422: {"model": Error}})
def put_survivorship(body: SurvivorshipIn, runtime: RuntimeDep, principal: Admin) -> dict:
    """Store the rules; every person's stored profile (what segments filter on) is rewritten in
    batches by the scheduler: ``rewrite`` says how far, ``GET /v1/identity/survivorship/rewrites/{id}``
    follows it. Until it reaches a person, segments see that person's values under the old rules."""
    chosen, rewrite = profile_rewrite.change_rules(runtime.db, source_priority=body.source_priority,
                                                   rules=body.rules, actor=principal.name)
    return {**chosen.as_dict(), "rewrite": rewrite}


@router.get("/identity/survivorship/rewrites/{rewrite_id}", responses={404: {"model": Error}})
def get_rewrite(rewrite_id: Annotated[str, Path(max_length=64)], runtime: RuntimeDep, principal: HqReader) -> dict:
    """A rewrite's progress: ``status`` running, done or superseded (by a later change), ``done`` of ``total``."""
    return profile_rewrite.rewrite(runtime.db, rewrite_id)
