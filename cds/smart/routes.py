"""HTTP for the SMART app: its configuration, the Questionnaire it answers, and the Wells
score as data (the criteria, bands and NICE NG158 steps from rules/dvt.toml, and for a posted
chart which criteria it already answers).

The app reads the chart from the EHR's FHIR server with its own SMART token, using the
service's prefetch templates, and posts what it read in the shape of a hook request's
prefetch, so the criteria are judged by exactly the pipeline a hook call uses. Nothing posted
here is stored; the token never reaches the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from cds.content import Content
from cds.hooks import HookRequest
from cds.prefetch import PreconditionFailed, gather, prefetch_keys
from cds.reasoning.assessment import assess
from cds.reasoning.dvt import DvtResult
from cds.reasoning.scores import ScoreResult
from cds.service import ThighPainService
from cds.smart.apps import SmartApp, smart_apps
from cds.smart.questionnaire import questionnaire, score_of
from cds.view.markdown import render_markdown

FHIR_JSON = "application/fhir+json"
# SMART App Launch 2.x scopes: read the chart as the hook does, create the answers
SCOPES = ("launch openid fhirUser patient/Patient.rs patient/Condition.rs "
          "patient/Observation.rs patient/Procedure.rs patient/MedicationRequest.rs "
          "patient/QuestionnaireResponse.crs")


def definition(content: Content, app: SmartApp) -> dict[str, Any]:
    """The score as the app computes it: criteria, bands and the next steps by band."""
    score = score_of(content, app.score)
    source = content.sources[score.source]
    return {
        "app": app.id,
        "score": {"id": score.id, "title": score.title, "short": score.short,
                  "source": {"label": source.label, "url": source.url},
                  "bands": [b.model_dump() for b in score.bands]},
        "criteria": [{"id": c.id, "label": c.label, "points": c.points, "ask": c.ask,
                      "judgement": c.judgement, "note": c.note} for c in score.criteria],
        "steps": [{"id": s.id, "band": s.when_band, "ddimer": s.when_ddimer,
                   "indicator": s.indicator, "summary": s.summary,
                   "detail_html": str(render_markdown(s.detail))}
                  for s in content.dvt.steps] if score.id == content.dvt.score.id else [],
        "questionnaire": {"id": app.id, "url": app.questionnaire,
                          "version": app.questionnaire_version},
        "answers_valid_days": app.answers_valid_days,
    }


def _chart(wells: ScoreResult, dvt: DvtResult) -> dict[str, Any]:
    d = dvt.ddimer
    if d.measurement is not None:
        ddimer = f"D-dimer {d.state}: {d.measurement.text}, against the {d.threshold_basis}."
    else:
        ddimer = "No recent D-dimer in the record."
    return {
        "chart": {
            r.criterion.id: {
                "truth": r.truth.value,
                "evidence": [e.text for e in r.answer.evidence],
                "reason": r.answer.reason,
                "by": "clinician" if any(e.reference.startswith("QuestionnaireResponse")
                                         for e in r.answer.evidence) else "chart",
            }
            for r in wells.results
        },
        "ddimer": {"state": d.state, "text": ddimer},
        "diagnosed": dvt.diagnosed.met,
    }


def build_router(service: ThighPainService, client_id: str,
                 as_of: datetime | None = None) -> APIRouter:
    router = APIRouter(prefix="/smart", tags=["SMART app"])
    content = service.content
    apps = {a.id: a for a in smart_apps(content)}

    def app_or_404(app_id: str) -> SmartApp:
        if app_id not in apps:
            raise HTTPException(404, f"no SMART app {app_id!r}")
        return apps[app_id]

    @router.get("/config.json")
    def config() -> dict[str, Any]:
        """What launch.html and the app need: the client id the EHR registered, scopes, and
        the prefetch templates to read the chart with."""
        return {"clientId": client_id, "scope": SCOPES,
                "prefetch": service.prefetch["patient-view"],
                "required": [k.key for k in prefetch_keys(content) if k.required],
                "apps": list(apps)}

    @router.get("/Questionnaire/{app_id}")
    def get_questionnaire(app_id: str) -> JSONResponse:
        return JSONResponse(questionnaire(content, app_or_404(app_id)), media_type=FHIR_JSON)

    @router.get("/{app_id}/score")
    def score(app_id: str) -> dict[str, Any]:
        return definition(content, app_or_404(app_id))

    @router.post("/{app_id}/score")
    def score_for_chart(app_id: str, request: HookRequest) -> dict[str, Any]:
        """The score's criteria judged against a chart posted as a hook request's prefetch."""
        app = app_or_404(app_id)
        if request.fhirServer is not None or request.fhirAuthorization is not None:
            raise HTTPException(400, "post the chart as prefetch; the service does not fetch "
                                     "for the app")
        try:
            data = gather(request, content)
        except PreconditionFailed as exc:
            raise HTTPException(400, str(exc)) from exc
        record = service.builder.build(request.context.patientId, data.resources, data.missing,
                                       as_of)
        assessment = assess(content, record)
        result = assessment.scores[app.score]
        return {**definition(content, app), **_chart(result, assessment.dvt),
                "patient": request.context.patientId, "as_of": record.as_of.isoformat()}

    return router

