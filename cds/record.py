"""PatientRecord: the facts the rules need, read from raw FHIR R4 JSON.

Only resources whose codes map to a concept in cards/ are validated with fhir.resources
(R4B models read R4 JSON); everything else is counted and left alone, so a chart with years
of unrelated history stays fast. An invalid resource is skipped and reported, never fatal.
Every fact keeps the reference of the resource it came from, so cards can cite it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar, Literal

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from pydantic import ValidationError

from cds.content import Concept, Content
from cds.smart.answers import ClinicianAnswer, read_questionnaire_response
from cds.terminology import Terminology
from cds.units import UnitError, convert

FindingStatus = Literal["active", "history", "refuted"]

_ACTIVE = {"active", "recurrence", "relapse"}
_HISTORY = {"inactive", "remission", "resolved"}
_OBS_NEVER = {"cancelled", "entered-in-error"}
_OBS_TENTATIVE = {"registered", "preliminary", "unknown"}
_MED_ACTIVE = {"active", "on-hold", "completed", "intended"}
_PRESENT_CODES = {"52101004", "373066001", "Y", "POS"}  # Present, Yes, v2 Yes, Positive
_ABSENT_CODES = {"2667000", "373067005", "N", "NEG"}  # Absent, No, v2 No, Negative


@dataclass(frozen=True)
class Finding:
    """A condition, symptom or exam finding, from a Condition or an Observation."""

    concept: str
    status: FindingStatus
    reference: str
    text: str
    when: datetime | None = None
    tentative: bool = False
    recorded: datetime | None = None  # when it was written down (Condition.recordedDate)
    ended: datetime | None = None  # Condition.abatementDateTime (a pregnancy ended at birth)


@dataclass(frozen=True)
class Measurement:
    """A numeric or yes/no observation, its value in the concept's canonical unit."""

    concept: str
    reference: str
    text: str
    when: datetime | None
    value: float | None = None
    present: bool | None = None
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    interpretation: str | None = None
    tentative: bool = False


@dataclass(frozen=True)
class Event:
    """A procedure or a medication, with when it happened or was ordered."""

    concept: str
    reference: str
    text: str
    when: datetime | None


@dataclass
class PatientRecord:
    patient_id: str
    as_of: datetime
    birth_date: date | None = None
    sex: str | None = None
    patient_reference: str | None = None
    findings: dict[str, list[Finding]] = field(default_factory=lambda: defaultdict(list))
    measurements: dict[str, list[Measurement]] = field(default_factory=lambda: defaultdict(list))
    procedures: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    medications: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    answers: dict[str, ClinicianAnswer] = field(default_factory=dict)  # score/criterion
    read: set[str] = field(default_factory=set)
    # on encounter-start: the concepts the Encounter gives as its reason, and the references
    # of the Conditions it names as its reason
    encounter_reasons: dict[str, str] = field(default_factory=dict)
    encounter_reason_refs: set[str] = field(default_factory=set)
    missing: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def age(self) -> int | None:
        if self.birth_date is None:
            return None
        today = self.as_of.date()
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# ---------------------------------------------------------------- helpers


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=UTC)
    if isinstance(value, str):  # partial dates such as "2019" or "2019-04"
        try:
            year, _, rest = value.partition("-")
            month = int(rest[:2]) if rest else 1
            return datetime(int(year), month, 1, tzinfo=UTC)
        except ValueError:
            return None
    return None


def _status(raw: dict[str, Any]) -> str | None:
    """The raw status if it is a string (anything else fails validation later)."""
    value = raw.get("status")
    return value if isinstance(value, str) else None


def _code_of(codeable: Any) -> str | None:
    if codeable is None or not codeable.coding:
        return None
    return codeable.coding[0].code


# UCUM codes as a clinician writes them (display only; conversions use the codes)
_UNIT_WORDS = {"": "", "Cel": " °C", "%": "%", "ug/L": " µg/L", "ug/mL": " µg/mL",
               "{score}": ""}


def unit_words(unit: str | None) -> str:
    """' µg/L' for 'ug/L', '' for an annotation such as '{score}': to follow a number."""
    return _UNIT_WORDS.get(unit or "", f" {unit}")

_SEMANTIC_TAG = re.compile(
    r"\s*\((finding|disorder|procedure|event|situation|observable entity|body structure|"
    r"morphologic abnormality|qualifier value|regime/therapy|substance|product|"
    r"physical object|specimen|attribute|record artifact|navigational concept|"
    r"assessment scale|clinical drug|medicinal product|medicinal product form)\)\s*$")


def clinical_text(text: str) -> str:
    """A display as a clinician writes it: without SNOMED CT's semantic tag ('(finding)')."""
    return _SEMANTIC_TAG.sub("", text.replace("\u200b", "")).strip()


def _display(codeable: Any, fallback: str) -> str:
    if codeable is None:
        return fallback
    if codeable.text:
        return clinical_text(str(codeable.text))
    for coding in codeable.coding or ():
        if coding.display:
            return clinical_text(str(coding.display))
    return fallback


def _site_words(body_sites: Any) -> str:
    """' at <site>' for a finding whose body site is recorded (what makes it saddle-area or
    one-sided), '' otherwise."""
    sites = body_sites if isinstance(body_sites, list) else [body_sites]
    words = []
    for site in sites:
        if isinstance(site, dict):
            text = site.get("text") or next(
                (c.get("display") for c in site.get("coding") or () if isinstance(c, dict)
                 and isinstance(c.get("display"), str)), None)
            if isinstance(text, str):
                words.append(clinical_text(text))
    sides = [w.lower() for w in words if w.lower() in _SIDES]
    places = [w for w in words if w.lower() not in _SIDES]
    return (f" at {', '.join(places)}" if places else "") + "".join(f", {w}" for w in sides)


_SIDES = {"left", "right", "right and left", "bilateral"}


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "date unknown"


# ---------------------------------------------------------------- readers


class RecordBuilder:
    """Turns raw FHIR JSON into a PatientRecord for one patient at one moment."""

    def __init__(self, content: Content, terminology: Terminology) -> None:
        self.content = content
        self.terminology = terminology
        self.lookback = content.lookback_days()
        self._encounter_id: str | None = None

    def build(
        self,
        patient_id: str,
        resources: dict[str, list[dict[str, Any]]],
        missing: dict[str, str] | None = None,
        as_of: datetime | None = None,
        encounter_id: str | None = None,
    ) -> PatientRecord:
        """`encounter_id` (encounter-start) names the Encounter whose reason counts as the
        presentation; without it Encounters are not read."""
        record = PatientRecord(patient_id=patient_id, as_of=as_of or datetime.now(UTC))
        self._encounter_id = encounter_id
        record.missing.update(missing or {})
        for kind, items in resources.items():
            record.read.add(kind)
            reader = self._readers.get(kind)
            for raw in items:
                if not isinstance(raw, dict):
                    record.skipped.append(f"{kind}: an entry that is not a JSON object")
                    continue
                rtype = raw.get("resourceType")
                record.counts[str(rtype)] += 1
                if rtype == "OperationOutcome":
                    record.skipped.append(f"{kind}: the FHIR server returned an OperationOutcome")
                    continue
                actual = self._readers.get(str(rtype), reader)
                if actual is None:
                    continue
                actual(self, record, raw)
        return record

    def _label(self, concepts: set[str]) -> str:
        return self.content.concepts[sorted(concepts)[0]].label

    # Each reader filters by code on the raw JSON first, then validates what matters.

    def _patient(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        patient = self._validate(record, Patient, raw)
        if patient is None:
            return
        if patient.id and patient.id != record.patient_id:
            record.skipped.append(f"Patient/{patient.id}: not the patient in context, ignored")
            return
        record.birth_date = patient.birthDate if isinstance(patient.birthDate, date) else None
        record.sex = patient.gender
        record.patient_reference = f"Patient/{patient.id or record.patient_id}"

    def _condition(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        concepts = self.terminology.concepts_in(raw.get("code"))
        if not concepts:
            return
        concepts |= self.terminology.concepts_at_site(concepts, raw.get("bodySite"))
        condition = self._validate(record, Condition, raw)
        if condition is None or not self._about_patient(record, condition.subject, raw):
            return
        verification = _code_of(condition.verificationStatus)
        if verification == "entered-in-error":
            return
        clinical = _code_of(condition.clinicalStatus)
        if verification == "refuted":
            status: FindingStatus = "refuted"
        elif clinical in _HISTORY or (clinical is None and condition.abatementDateTime):
            status = "history"
        else:
            status = "active"
        recorded = _aware(condition.recordedDate)
        when = _aware(condition.onsetDateTime) or recorded
        tentative = verification in {"unconfirmed", "provisional", "differential"}
        label = _display(condition.code, self._label(concepts)) + _site_words(raw.get("bodySite"))
        # only what differs from "active and confirmed" is spelled out
        state = {"active": "", "history": "resolved or inactive, ", "refuted": "refuted, "}[status]
        qualifier = f"{verification}, " if tentative else ""
        text = f"{label} ({state}{qualifier}{_day(when)})"
        ref = f"Condition/{condition.id}" if condition.id else "Condition (no id)"
        for concept in concepts:
            kind = self.content.concepts[concept].kind
            if kind == "condition":
                record.findings[concept].append(
                    Finding(concept, status, ref, text, when, tentative, recorded,
                            _aware(condition.abatementDateTime))
                )

    def _observation(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        concepts = self.terminology.concepts_in(raw.get("code"))
        if not concepts or _status(raw) in _OBS_NEVER or self._too_old(record, raw,
                                                                                concepts):
            return
        concepts |= self.terminology.concepts_at_site(concepts, raw.get("bodySite"))
        obs = self._validate(record, Observation, raw)
        if obs is None or not self._about_patient(record, obs.subject, raw):
            return
        when = (
            _aware(obs.effectiveDateTime)
            or _aware(obs.effectiveInstant)
            or _aware(obs.effectivePeriod.start if obs.effectivePeriod else None)
            or _aware(obs.issued)
        )
        ref = f"Observation/{obs.id}" if obs.id else "Observation (no id)"
        label = _display(obs.code, self._label(concepts)) + _site_words(raw.get("bodySite"))
        tentative = obs.status in _OBS_TENTATIVE
        for concept in concepts:
            spec = self.content.concepts[concept]
            present = self._presence(obs, spec)
            if spec.kind == "condition":
                # an exam finding or symptom recorded as an Observation
                status: FindingStatus = "refuted" if present is False else "active"
                state = "recorded as absent, " if present is False else ""
                record.findings[concept].append(
                    Finding(concept, status, ref, f"{label} ({state}{_day(when)})", when,
                            tentative)
                )
            elif spec.kind == "observation":
                measurement = self._measurement(record, obs, concept, spec.unit, ref, label, when)
                if measurement is not None:
                    record.measurements[concept].append(measurement)

    def _too_old(self, record: PatientRecord, raw: dict[str, Any], concepts: set[str]) -> bool:
        """A chart with years of vital signs stays fast: results older than any rule's
        window are dropped before validation (findings recorded as Observations are kept)."""
        days = []
        for concept in concepts:
            if self.content.concepts[concept].kind != "observation":
                return False
            window = self.lookback.get(concept)
            if window is None:
                return False
            days.append(window)
        when = raw.get("effectiveDateTime") or raw.get("issued")
        if not isinstance(when, str):
            return False
        try:
            moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return False  # let validation report it
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if moment < record.as_of - timedelta(days=max(days) + 1):
            record.counts["Observation outside the rules' time windows"] += 1
            return True
        return False

    def _measurement(
        self, record: PatientRecord, obs: Observation, concept: str, unit: str | None,
        ref: str, label: str, when: datetime | None,
    ) -> Measurement | None:
        tentative = obs.status in _OBS_TENTATIVE
        valence = self.content.concepts[concept].valence
        interpretation = _code_of(obs.interpretation[0]) if obs.interpretation else None
        value: float | None = None
        shown_unit = unit
        quantity = obs.valueQuantity
        if quantity is not None and quantity.value is not None:
            source_unit = quantity.code or quantity.unit
            try:
                value = (convert(float(quantity.value), source_unit, unit, valence) if unit
                         else float(quantity.value))
            except UnitError as exc:
                record.skipped.append(f"{ref}: {label}: {exc}")
                return None
        elif obs.valueInteger is not None:
            value = float(obs.valueInteger)
        present = self._presence(obs, self.content.concepts[concept])
        if value is None and present is None:
            return None
        low = high = None
        for rng in obs.referenceRange or ():
            try:
                if rng.low is not None and rng.low.value is not None and unit:
                    low = convert(float(rng.low.value), rng.low.code or rng.low.unit, unit,
                                  valence)
                if rng.high is not None and rng.high.value is not None and unit:
                    high = convert(float(rng.high.value), rng.high.code or rng.high.unit,
                                   unit, valence)
            except UnitError:
                low = high = None
            break
        if value is not None:
            shown = f"{value:g}{unit_words(shown_unit)}"
        elif obs.valueCodeableConcept is not None:
            shown = _display(obs.valueCodeableConcept, "yes" if present else "no")  # "Pregnant"
        else:
            shown = "yes" if present else "no"
        status = f", {obs.status}" if tentative else ""
        text = f"{self.content.concepts[concept].label} {shown} ({_day(when)}{status})"
        return Measurement(concept, ref, text, when, value, present, unit, low, high,
                           interpretation, tentative)

    @staticmethod
    def _presence(obs: Observation, spec: Concept) -> bool | None:
        if obs.valueBoolean is not None:
            return bool(obs.valueBoolean)
        if obs.valueCodeableConcept is not None:
            codes = {c.code for c in obs.valueCodeableConcept.coding or ()}
            if codes & _ABSENT_CODES or codes.intersection(spec.absent_values):
                return False
            if codes & _PRESENT_CODES or codes.intersection(spec.present_values):
                return True
        return None

    def _procedure(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        concepts = self.terminology.concepts_in(raw.get("code"))
        if not concepts or _status(raw) in {"entered-in-error", "not-done", "preparation"}:
            return
        procedure = self._validate(record, Procedure, raw)
        if procedure is None or not self._about_patient(record, procedure.subject, raw):
            return
        when = (
            _aware(procedure.performedDateTime)
            or _aware(procedure.performedPeriod.start if procedure.performedPeriod else None)
        )
        ref = f"Procedure/{procedure.id}" if procedure.id else "Procedure (no id)"
        text = f"{_display(procedure.code, self._label(concepts))} ({_day(when)})"
        for concept in concepts:
            record.procedures[concept].append(Event(concept, ref, text, when))

    def _medication(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        concepts = self.terminology.concepts_in(raw.get("medicationCodeableConcept"))
        if not concepts or _status(raw) not in _MED_ACTIVE:
            return
        model = MedicationRequest if raw.get("resourceType") == "MedicationRequest" else (
            MedicationStatement)
        med = self._validate(record, model, raw)
        if med is None or not self._about_patient(record, med.subject, raw):
            return
        when = _aware(getattr(med, "authoredOn", None)) or _aware(
            getattr(med, "effectiveDateTime", None))
        ref = f"{raw['resourceType']}/{med.id}" if med.id else raw["resourceType"]
        text = f"{_display(med.medicationCodeableConcept, self._label(concepts))} ({_day(when)})"
        for concept in concepts:
            record.medications[concept].append(Event(concept, ref, text, when))

    def _encounter(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        """The reason for the encounter in context: coded reasons and the Conditions named."""
        if self._encounter_id is None or raw.get("id") != self._encounter_id:
            return
        reasons = raw.get("reasonCode")
        for codeable in reasons if isinstance(reasons, list) else ():
            for concept in self.terminology.concepts_in(codeable):
                record.encounter_reasons.setdefault(
                    concept, f"Encounter/{self._encounter_id}")
        refs = raw.get("reasonReference")
        for ref in refs if isinstance(refs, list) else ():
            target = ref.get("reference") if isinstance(ref, dict) else None
            if isinstance(target, str) and target.startswith("Condition/"):
                record.encounter_reason_refs.add(target)

    _readers: ClassVar[dict[str, Callable[..., None]]] = {
        "Encounter": _encounter,
        "Patient": _patient,
        "Condition": _condition,
        "Observation": _observation,
        "Procedure": _procedure,
        "MedicationRequest": _medication,
        "MedicationStatement": _medication,
        "QuestionnaireResponse": read_questionnaire_response,
    }

    # ------------------------------------------------------------ validation

    @staticmethod
    def _validate(record: PatientRecord, model: Any, raw: dict[str, Any]) -> Any:
        try:
            return model.model_validate(raw)
        except (ValidationError, ValueError, TypeError) as exc:
            first = str(exc).splitlines()
            reason = first[1].strip() if len(first) > 1 else (first[0] if first else "invalid")
            ident = raw.get("id", "?")
            record.skipped.append(f"{raw.get('resourceType')}/{ident}: invalid FHIR ({reason})")
            return None

    @staticmethod
    def _about_patient(record: PatientRecord, subject: Any, raw: dict[str, Any]) -> bool:
        reference = getattr(subject, "reference", None) if subject is not None else None
        if not reference:
            return True  # searched by patient: trust the server
        tail = str(reference).rstrip("/").split("/")[-1]
        if tail == record.patient_id or str(reference).startswith("urn:uuid:"):
            return True
        record.skipped.append(
            f"{raw.get('resourceType')}/{raw.get('id', '?')}: about another patient, ignored"
        )
        return False
