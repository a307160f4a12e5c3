"""Campaigns and marketing consent (issue 20): templates and their approval, campaigns (create,
launch, pause, results with uplift), consent per channel, the suppression list; and the provider
callbacks and unsubscribe link (``public``: no API key, as the provider and the member have none)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from cloud.activation import audience, campaigns, cohorts, consent, sender
from cloud.api.deps import Admin, HqReader, RuntimeDep
from cloud.api.schemas import Error

router = APIRouter(tags=["campaigns"])
public = APIRouter(tags=["campaigns"])

Channel = Literal["sms", "wechat", "wecom", "email"]
#: what a campaign sends on: the consent channels and the e-coupon (``code``: loyalty's coupon template)
SendChannel = Literal["sms", "wechat", "wecom", "email", "coupon", "guide_task"]


class TemplateIn(BaseModel):
    channel: SendChannel
    code: str = Field(min_length=1, max_length=64, description="the provider's template code (SMS_xxx, WeChat template_id)")
    body: str = Field(min_length=1, max_length=500, description="text with {name}, {surname}, {title}, {tier}, {points}, {link}")
    params: list[str] = Field(default_factory=list, max_length=10, description="the fields the provider's template takes")


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    segment_id: str = Field(min_length=1, max_length=64)
    channel: SendChannel
    template_id: str = Field(min_length=1, max_length=64)
    holdout_pct: float = Field(10.0, ge=0, lt=100)
    window_days: int = Field(14, ge=1, le=365)
    start_at: datetime | None = None
    quiet_start: int = Field(21, ge=0, le=23)
    quiet_end: int = Field(9, ge=0, le=23)
    weekly_cap: int = Field(2, ge=1, le=50)


class ConsentIn(BaseModel):
    granted: bool
    source: str = Field("api", max_length=40, description="where the member said so: counter, mini_program, form, api")
    store: str | None = Field(None, max_length=64)


class SuppressionIn(BaseModel):
    kind: Literal["phone", "email", "openid", "person"]
    value: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=200)


@router.post("/campaigns/templates", status_code=201)
def create_template(body: TemplateIn, runtime: RuntimeDep, principal: Admin) -> dict:
    return campaigns.create_template(runtime.db, channel=body.channel, code=body.code, body=body.body,
                                     params=body.params, actor=principal.name)


@router.post("/campaigns/templates/{template_id}/approve", responses={404: {"model": Error}})
def approve_template(template_id: str, runtime: RuntimeDep, principal: Admin) -> dict:
    return campaigns.approve_template(runtime.db, template_id, actor=principal.name)


@router.post("/campaigns", status_code=201, responses={404: {"model": Error}, 422: {"model": Error}})
def create_campaign(body: CampaignIn, runtime: RuntimeDep, principal: Admin) -> dict:
    return campaigns.create(runtime.db, **body.model_dump(), actor=principal.name)


@router.get("/campaigns")
def list_campaigns(runtime: RuntimeDep, principal: HqReader) -> list[dict]:
    return campaigns.listing(runtime.db)


@router.get("/campaigns/{campaign_id}", responses={404: {"model": Error}})
def get_campaign(campaign_id: str, runtime: RuntimeDep, principal: HqReader) -> dict:
    return campaigns.get(runtime.db, campaign_id)


@router.post("/campaigns/{campaign_id}/launch", responses={404: {"model": Error}, 409: {"model": Error}})
def launch_campaign(campaign_id: str, runtime: RuntimeDep, principal: Admin) -> dict:
    """Freeze the audience (treatment and the stratified holdout) and queue the sends; a paused
    campaign resumes."""
    return campaigns.launch(runtime.db, campaign_id)


@router.post("/campaigns/{campaign_id}/pause", responses={404: {"model": Error}, 409: {"model": Error}})
def pause_campaign(campaign_id: str, runtime: RuntimeDep, principal: Admin) -> dict:
    return campaigns.pause(runtime.db, campaign_id)


@router.get("/campaigns/{campaign_id}/results", responses={404: {"model": Error}, 409: {"model": Error}})
def campaign_results(campaign_id: str, runtime: RuntimeDep, principal: HqReader) -> dict:
    """Both groups' conversion and revenue per head in the window, online and in store; the uplift
    per stratum and overall with a 95% confidence interval."""
    return campaigns.results(runtime.db, campaign_id)


@router.get("/marketing/consent/{member_id}", responses={404: {"model": Error}})
def get_consent(member_id: str, runtime: RuntimeDep, principal: Admin) -> dict:
    return consent.consents(runtime.db, member_id)


@router.put("/marketing/consent/{member_id}/{channel}", responses={404: {"model": Error}})
def put_consent(member_id: str, channel: Channel, body: ConsentIn, runtime: RuntimeDep, principal: Admin) -> dict:
    return consent.set_consent(runtime.db, member_id, channel, body.granted, source=body.source,
                               actor=principal.name, store=body.store)


class GuideIn(BaseModel):
    assistant: str = Field(min_length=1, max_length=64)
    wecom_user: str = Field(min_length=1, max_length=64, description="the guide's WeCom user id")


@router.put("/marketing/guide/{member_id}", responses={404: {"model": Error}})
def put_guide(member_id: str, body: GuideIn, runtime: RuntimeDep, principal: Admin) -> dict:
    """The member's own guide (专属导购), whom campaigns on the wecom channel message about them."""
    return consent.set_guide(runtime.db, member_id, assistant=body.assistant, wecom_user=body.wecom_user)


@router.post("/marketing/suppression", status_code=201)
def add_suppression(body: SuppressionIn, runtime: RuntimeDep, principal: Admin) -> dict:
    consent.suppress(runtime.db, body.kind, body.value, reason=body.reason, actor=principal.name)
    return body.model_dump()


@router.delete("/marketing/suppression/{kind}/{value}", status_code=204)
def remove_suppression(kind: str, value: str, runtime: RuntimeDep, principal: Admin) -> None:
    consent.unsuppress(runtime.db, kind, value)


@router.post("/cohorts", status_code=201, responses={404: {"model": Error}, 422: {"model": Error}})
def create_cohort(body: cohorts.CohortSpec, runtime: RuntimeDep, principal: Admin) -> dict:
    """A cohort to follow: a saved segment as of ``start``, a channel's ``order_nos`` (a livestream's
    orders) or a ``coupon_template``'s redemptions (an influencer's coupon)."""
    return cohorts.create(runtime.db, body, actor=principal.name)


@router.get("/cohorts")
def list_cohorts(runtime: RuntimeDep, principal: HqReader) -> list[dict]:
    return cohorts.listing(runtime.db)


@router.get("/cohorts/{cohort_id}", responses={404: {"model": Error}, 409: {"model": Error}})
def get_cohort(cohort_id: str, runtime: RuntimeDep, principal: HqReader) -> dict:
    """Over 30/60/90/180 days, the cohort against its matched control (``campaign:<id>``: treatment
    against its holdout): buyer (repurchase) rate, orders and LTV per head, channel mix."""
    return cohorts.cohort(runtime.db, cohort_id)


@router.get("/audiences/{segment_id}", responses={404: {"model": Error}, 422: {"model": Error}})
def audience_export(segment_id: str, runtime: RuntimeDep, principal: Admin,
                    hash: Literal["md5", "sha256"] = "sha256") -> StreamingResponse:
    """A saved segment for ad-platform audience upload: ``kind,hash`` lines of normalised phones and
    device ids, hashed; never raw personal data; suppressed persons and phones left out."""
    lines = list(audience.export(runtime.db, segment_id, hash_name=hash))
    return StreamingResponse(iter([("\n".join(lines) + "\n") if lines else ""]), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="audience-{segment_id}-{hash}.csv"'})


class SyncIn(BaseModel):
    hash: Literal["md5", "sha256"] = "sha256"
    every_hours: float = Field(24.0, ge=1, le=720)


@router.put("/audiences/{segment_id}/sync", responses={404: {"model": Error}, 422: {"model": Error}})
def schedule_audience(segment_id: str, body: SyncIn, runtime: RuntimeDep, principal: Admin) -> dict:
    """Keep the segment's upload file refreshed on a schedule (the ``audience-refresh`` job)."""
    return audience.schedule(runtime.db, segment_id, hash_name=body.hash, every_hours=body.every_hours,
                             actor=principal.name)


@router.get("/audiences/{segment_id}/snapshot", responses={404: {"model": Error}})
def audience_snapshot(segment_id: str, runtime: RuntimeDep, principal: Admin,
                      hash: Literal["md5", "sha256"] = "sha256") -> StreamingResponse:
    """The last refreshed file (``X-Refreshed``: when; ``X-Added`` / ``X-Removed``: the change since
    the refresh before), for an ad platform to pull."""
    row, lines = audience.snapshot(runtime.db, segment_id, hash)
    return StreamingResponse(iter([("\n".join(lines) + "\n") if lines else ""]), media_type="text/csv", headers={
        "X-Refreshed": row["refreshed"] or "", "X-Added": str(row["added"]), "X-Removed": str(row["removed"])})


@public.post("/callbacks/aliyun/sms-up")
def aliyun_sms_up(body: list[dict], runtime: RuntimeDep) -> dict:
    """Aliyun's SmsUp push: replies such as 退订/TD withdraw SMS consent. Answers as Aliyun expects."""
    consent.sms_uplink(runtime.db, body[:1000])
    return {"code": 0, "msg": "成功"}


@public.post("/callbacks/aliyun/sms-report")
def aliyun_sms_report(body: list[dict], runtime: RuntimeDep) -> dict:
    """Aliyun's SmsReport push: delivery receipts by BizId."""
    sender.sms_report(runtime.db, body[:5000])
    return {"code": 0, "msg": "成功"}


@public.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, runtime: RuntimeDep) -> str:
    """The link in a marketing message: one tap unsubscribes that channel."""
    consent.unsubscribe(runtime.db, token)
    return "<!doctype html><meta charset=utf-8><title>退订</title><p>已退订。您将不再收到此渠道的营销消息。</p>"
