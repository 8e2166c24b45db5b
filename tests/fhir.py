"""Small builders for FHIR R4 test resources, coded through the concepts in cards/."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cds.content import default_content

AS_OF = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PATIENT_ID = "pt-1"
_ids = itertools.count(1)
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def ago(days: float = 0, hours: float = 0) -> str:
    return (AS_OF - timedelta(days=days, hours=hours)).isoformat()


def coding(concept: str, system: str | None = None) -> dict[str, str]:
    """The first coding of a concept in cards/ (optionally of one system), as FHIR JSON."""
    content = default_content()
    for c in content.concepts[concept].codings:
        if system is None or c.system == system:
            if c.match == "prefix":
                continue
            return {"system": content.systems[c.system], "code": c.code, "display": c.display}
    wanted = content.systems.get(system or "", system)
    for vs_id in content.concepts[concept].valuesets:
        found = sorted(k for k in content.valuesets[vs_id].codes if wanted in (None, k[0]))
        if found:
            sys_, code = found[0]
            return {"system": sys_, "code": code,
                    "display": content.valuesets[vs_id].displays[(sys_, code)]}
    raise LookupError(f"{concept} has no exact {system or ''} coding")


def patient(birth: str = "1970-05-01", gender: str = "female", pid: str = PATIENT_ID) -> dict:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender}


def condition(concept: str | None = None, *, code: dict[str, str] | None = None,
              clinical: str | None = "active", verification: str | None = "confirmed",
              onset_days: float | None = 1, pid: str = PATIENT_ID,
              rid: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": rid or f"cond-{next(_ids)}",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [code or coding(concept or "")]},
    }
    if clinical:
        res["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification:
        res["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    if onset_days is not None:
        res["onsetDateTime"] = ago(onset_days)
    return res


def observation(concept: str, value: float | bool | None = None, unit: str | None = None, *,
                days: float = 0, hours: float = 1, status: str = "final",
                code: dict[str, str] | None = None, pid: str = PATIENT_ID,
                high: float | None = None, rid: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid or f"obs-{next(_ids)}",
        "status": status,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [code or coding(concept)]},
        "effectiveDateTime": ago(days, hours),
    }
    if isinstance(value, bool):
        res["valueBoolean"] = value
    elif value is not None:
        res["valueQuantity"] = {"value": value, "unit": unit,
                                "system": "http://unitsofmeasure.org", "code": unit}
    if high is not None:
        res["referenceRange"] = [{"high": {"value": high, "unit": unit,
                                           "system": "http://unitsofmeasure.org",
                                           "code": unit}}]
    return res


def procedure(concept: str, days: float, pid: str = PATIENT_ID) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": f"proc-{next(_ids)}",
        "status": "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [coding(concept)]},
        "performedDateTime": ago(days),
    }


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


def presenting_complaint() -> dict[str, Any]:
    """Thigh pain since yesterday: the presentation without which the service is quiet."""
    return condition("thigh_pain", onset_days=1, rid="presenting-thigh-pain")


def hook_request(*resources: dict[str, Any], pt: dict[str, Any] | None = None,
                 hook: str = "patient-view", presenting: bool = True,
                 **extra: Any) -> dict[str, Any]:
    """A patient-view request with every prefetch key filled from `resources`; unless
    `presenting` is False the chart also records thigh pain since yesterday."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in [*resources, *([presenting_complaint()] if presenting else [])]:
        by_type.setdefault(r["resourceType"], []).append(r)
    request: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID},
        "prefetch": {
            "patient": pt or patient(),
            "conditions": searchset(by_type.get("Condition", [])),
            "observations": searchset(by_type.get("Observation", [])),
            "findings": searchset([]),
            "procedures": searchset(by_type.get("Procedure", [])),
            "medications": searchset(by_type.get("MedicationRequest", [])),
        },
    }
    if hook == "encounter-start":
        request["context"]["encounterId"] = "enc-1"
    request.update(extra)
    return request


def build_record(content: Any, *resources: dict[str, Any],
                 missing: dict[str, str] | None = None) -> Any:
    """A PatientRecord read from raw resources at the pinned date (no prefetch): only the
    resource types given count as read."""
    from cds.record import RecordBuilder
    from cds.terminology import Terminology

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_kind.setdefault(r["resourceType"], []).append(r)
    return RecordBuilder(content, Terminology.from_content(content)).build(
        PATIENT_ID, by_kind, missing, AS_OF)
