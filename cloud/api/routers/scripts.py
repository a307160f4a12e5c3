"""Sales-script templates (话术) that HQ edits, with A/B variants and what each variant achieved."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Admin, HqReader, RuntimeDep
from cloud.api.schemas import Error, Input
from cloud.guide.recommend.reasons import Lang
from cloud.guide.sales_scripts import outcomes, templates

router = APIRouter(prefix="/scripts", tags=["scripts"])


class TemplateIn(Input):
    model_config = ConfigDict(extra="forbid")

    situation: templates.Situation
    lang: Lang = "zh"
    variant: templates.Variant = "A"
    text: str = Field(min_length=1, max_length=1000, description="placeholders: GET /v1/scripts/fields")
    active: bool = True


class TemplatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=1000)
    active: bool | None = None


@router.get("/templates", response_model=list[templates.Template])
def list_templates(
    runtime: RuntimeDep, principal: HqReader,
    situation: Annotated[templates.Situation | None, Query()] = None, lang: Annotated[Lang | None, Query()] = None,
) -> list[templates.Template]:
    """HQ's templates and the built-in defaults (``builtin``) they override."""
    return templates.list_templates(runtime.db, situation=situation, lang=lang)


@router.get("/fields")
def fields(principal: HqReader) -> dict[str, list[str]]:
    """What a template may say, for the editor: its placeholders and the situations."""
    return {"fields": sorted(templates.FIELDS), "situations": list(templates.SITUATIONS)}


@router.post("/templates", status_code=status.HTTP_201_CREATED, response_model=templates.Template,
             responses={422: {"model": Error}})
def create_template(body: TemplateIn, runtime: RuntimeDep, principal: Admin) -> templates.Template:
    """A new template or A/B variant; refused when a placeholder is unknown or the variant exists."""
    return templates.create_template(runtime.db, **body.model_dump(), actor=principal.name)


@router.put("/templates/{template_id}", response_model=templates.Template,
            responses={404: {"model": Error}, 422: {"model": Error}})
def update_template(template_id: str, body: TemplatePatch, runtime: RuntimeDep, principal: Admin) -> templates.Template:
    return templates.update_template(runtime.db, template_id, **body.model_dump(), actor=principal.name)


@router.get("/outcomes")
def variant_outcomes(
    runtime: RuntimeDep, principal: HqReader, situation: Annotated[templates.Situation | None, Query()] = None,
) -> list[dict]:
    """Per template and variant: cards shown and the assistants' actions on them (an A/B readout)."""
    return outcomes.outcomes(runtime.db, situation=situation)
