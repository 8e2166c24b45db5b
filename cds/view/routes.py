"""/view: the example scenarios, a form for a pasted or uploaded Bundle or hook request, and
the cards the service answers, rendered the way an EHR shows them.

Every input goes through the same pipeline as an EHR's hook call (ThighPainService.call);
issued cards are recorded like the API's, so that the Accept and Dismiss buttons post real
feedback to /cds-services/{id}/feedback and `cds feedback` reports it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from cds.auth import TrustConfig, fhir_server_allowed
from cds.bundle import BundleError, hook_request_from_bundle, resources_of
from cds.hooks import HookRequest
from cds.prefetch import PreconditionFailed
from cds.service import SERVICES, ThighPainService, WrongHook
from cds.view.examples import load_scenario, pinned_date, scenarios
from cds.view.markdown import render_markdown
from cds.view.summary import PatientSummary, summarise

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["markdown"] = render_markdown


@dataclass
class Shown:
    """What one page shows: the input's patient, the cards, or what went wrong."""

    title: str = ""
    summary: PatientSummary | None = None
    cards: list[dict[str, Any]] = field(default_factory=list)
    response: dict[str, Any] | None = None
    as_of: datetime | None = None
    error: str | None = None
    pasted: str = ""


def _resources_of_request(request: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value in (request.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            out += [e["resource"] for e in value.get("entry") or ()
                    if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        else:
            out.append(value)
    return out


def _parse_as_of(value: str) -> datetime | None:
    if not value.strip():
        return None
    moment = datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo else moment.replace(hour=moment.hour or 12, tzinfo=UTC)


def build_router(service: ThighPainService, store: Any, trust: TrustConfig) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def allow(url: str) -> bool:  # the view has no caller identity: fetch only in dev mode
        return trust.development and fhir_server_allowed(url, None)

    def run(document: Any, service_id: str, as_of: datetime | None, shown: Shown) -> None:
        if service_id not in SERVICES:
            raise BundleError(f"no CDS service with id {service_id!r}")
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            resources = resources_of(document)
            request = hook_request_from_bundle(document, service.content,
                                               hook=SERVICES[service_id])
        elif isinstance(document, dict) and "hookInstance" in document:
            request, resources = document, _resources_of_request(document)
        else:
            raise BundleError("neither a FHIR Bundle nor a CDS Hooks request")
        hook_request = HookRequest.model_validate(request)
        response, _ = service.call(service_id, hook_request, as_of=as_of, allow_server=allow)
        try:
            store.record_issued(service_id, response.cards)
        except Exception:  # bookkeeping never stops the cards from showing
            log.exception("could not record the issued cards")
        shown.response = response.wire()
        shown.cards = shown.response["cards"]
        shown.summary = summarise(resources, hook_request.context.patientId, as_of)

    def page(request: Request, shown: Shown, service_id: str, example: str | None,
             status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, "view.html", {
            "shown": shown,
            "scenarios": scenarios(),
            "example": example,
            "service_id": service_id,
            "services": SERVICES,
            "development": trust.development,
            "title": service.content.texts.service_title,
            "root": request.scope.get("root_path", ""),
        }, status_code=status)

    @router.get("/view", response_class=HTMLResponse)
    def view(request: Request, example: str | None = None,
             service: str = "thigh-pain") -> HTMLResponse:
        shown = Shown(title="Example scenarios")
        status = 200
        if example is not None:
            bundle = load_scenario(example)
            if bundle is None:
                shown.error = f"There is no example scenario called {example!r}."
                status = 404
            else:
                shown.title = example
                shown.as_of = pinned_date(bundle)
                try:
                    run(bundle, service, shown.as_of, shown)
                except (BundleError, ValidationError, WrongHook, PreconditionFailed) as exc:
                    shown.error, status = str(exc), 400
        return page(request, shown, service, example, status)

    @router.post("/view", response_class=HTMLResponse)
    async def view_input(request: Request, document: Annotated[str, Form()] = "",
                         upload: Annotated[UploadFile | None, File()] = None,
                         service: Annotated[str, Form()] = "thigh-pain",
                         as_of: Annotated[str, Form()] = "") -> HTMLResponse:
        shown = Shown(title="Your input", pasted=document)
        text = document
        if upload is not None and upload.filename:
            text = (await upload.read()).decode("utf-8", errors="replace")
            shown.title = upload.filename
        status = 200
        try:
            shown.as_of = _parse_as_of(as_of)
            if not text.strip():
                raise BundleError("paste or upload a FHIR Bundle or a CDS Hooks request")
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise BundleError(f"not valid JSON: {exc}") from exc
            await run_in_threadpool(run, parsed, service, shown.as_of, shown)
        except (BundleError, ValidationError, WrongHook, PreconditionFailed, ValueError) as exc:
            shown.error, status = _short(exc), 400
        return page(request, shown, service, None, status)

    return router


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"]) or "request"
        return f"Not a valid CDS Hooks request: {where}: {first['msg']}"
    return str(exc)
