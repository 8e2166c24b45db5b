"""A short patient summary from raw FHIR resources, for the view's header (display only:
nothing here feeds the rules, and odd resources are shown as best they can be)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass
class PatientSummary:
    name: str = "Unnamed patient"
    gender: str = "unknown"
    birth_date: str | None = None
    age: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    procedures: list[str] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)


def _text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return "uncoded"
    if isinstance(concept.get("text"), str):
        return concept["text"]
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return "uncoded"


def _code(concept: Any) -> str:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    first = codings[0] if isinstance(codings, list) and codings else {}
    return str(first.get("code", "")) if isinstance(first, dict) else ""


def _day(value: Any) -> str:
    return value[:10] if isinstance(value, str) else ""


def _value(obs: dict[str, Any]) -> str:
    q = obs.get("valueQuantity")
    if isinstance(q, dict) and q.get("value") is not None:
        return f"{q.get('value')} {q.get('unit') or q.get('code') or ''}".strip()
    if isinstance(obs.get("valueBoolean"), bool):
        return "yes" if obs["valueBoolean"] else "no"
    if "valueCodeableConcept" in obs:
        return _text(obs["valueCodeableConcept"])
    if obs.get("valueString") is not None:
        return str(obs["valueString"])
    return ""


def _name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or ():
        if not isinstance(name, dict):
            continue
        if isinstance(name.get("text"), str):
            return name["text"]
        given = " ".join(str(g) for g in name.get("given") or ())
        return f"{given} {name.get('family', '')}".strip() or "Unnamed patient"
    return "Unnamed patient"


def summarise(resources: list[dict[str, Any]], patient_id: str | None,
              as_of: datetime | None) -> PatientSummary:
    out = PatientSummary()
    out.counts = dict(Counter(str(r.get("resourceType")) for r in resources).most_common())
    patient = next((r for r in resources if r.get("resourceType") == "Patient"
                    and (patient_id is None or r.get("id") == patient_id)), None)
    if patient is not None:
        out.name = _name(patient)
        out.gender = str(patient.get("gender") or "unknown")
        born = patient.get("birthDate")
        if isinstance(born, str):
            out.birth_date = born
            try:
                birth = date.fromisoformat(born)
                today = (as_of or datetime.now()).date()
                out.age = today.year - birth.year - ((today.month, today.day)
                                                     < (birth.month, birth.day))
            except ValueError:
                out.age = None
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(str(r.get("resourceType")), []).append(r)
    for c in by_type.get("Condition", []):
        status = _code(c.get("clinicalStatus")) or "status unknown"
        verification = _code(c.get("verificationStatus"))
        if verification and verification != "confirmed":
            status += f", {verification}"
        when = _day(c.get("onsetDateTime") or c.get("recordedDate"))
        out.conditions.append(f"{_text(c.get('code'))} ({status}{', ' + when if when else ''})")
    observations = sorted(by_type.get("Observation", []),
                          key=lambda o: str(o.get("effectiveDateTime") or ""), reverse=True)
    for o in observations[:12]:
        value = _value(o)
        when = _day(o.get("effectiveDateTime") or o.get("issued"))
        out.observations.append(f"{_text(o.get('code'))}{': ' + value if value else ''}"
                                f"{' (' + when + ')' if when else ''}")
    for p in by_type.get("Procedure", []):
        when = _day(p.get("performedDateTime"))
        out.procedures.append(f"{_text(p.get('code'))}{' (' + when + ')' if when else ''}")
    for m in by_type.get("MedicationRequest", []) + by_type.get("MedicationStatement", []):
        out.medications.append(_text(m.get("medicationCodeableConcept")))
    return out
