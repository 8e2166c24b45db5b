"""PatientRecord: the facts the rules need, read from raw FHIR R4 JSON.

Only resources whose codes map to a concept in cards/ are read, and of those only the elements
the rules use, each checked against its FHIR datatype (cds.fhir.elements); everything else is
counted and left alone, so a chart with years of unrelated history stays fast. A resource
whose read elements are malformed is skipped and reported, never fatal. Whole-resource
validation with fhir.resources is `cds replay --strict` (cds.fhir.strict). Every fact keeps
the reference of the resource it came from, so cards can cite it.
"""

from __future__ import annotations

import math
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any, ClassVar, Literal, NamedTuple

from cds.content import Concept, Content
from cds.fhir import elements as fhir
from cds.fhir.elements import Codeable, Invalid
from cds.smart.answers import ClinicianAnswer, read_questionnaire_response
from cds.terminology import Terminology
from cds.units import UnitError, convert

FindingStatus = Literal["active", "history", "refuted"]

_ACTIVE = {"active", "recurrence", "relapse"}
_HISTORY = {"inactive", "remission", "resolved"}
# how a Condition's text qualifies its status: only what differs from "active" is spelled out
_CONDITION_STATES = {"active": "", "history": "resolved or inactive, ", "refuted": "refuted, "}
_OBS_NEVER = {"cancelled", "entered-in-error"}
# Observation.status (a required code): these place a result as they are, with one set
# lookup; any other value (absent, never counted, or not a known status) is checked as a code
_OBS_PLACED = frozenset({"registered", "preliminary", "final", "amended", "corrected",
                         "unknown"})
_OBS_TENTATIVE = {"registered", "preliminary", "unknown"}
_MED_ACTIVE = {"active", "on-hold", "completed", "intended"}
_PRESENT_CODES = {"52101004", "373066001", "Y", "POS"}  # Present, Yes, v2 Yes, Positive
_ABSENT_CODES = {"2667000", "373067005", "N", "NEG"}  # Absent, No, v2 No, Negative
# Unknown (SNOMED CT), v2/HL7 null flavours and FHIR data-absent reasons given as an answer
_UNKNOWN_CODES = {"261665006", "UNK", "ASKU", "NAV", "NASK", "unknown", "asked-unknown",
                  "not-asked", "asked-declined"}
# value[x] of Observation: the rules read four; more than one of any is invalid FHIR
_OBS_VALUES = frozenset({
    "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
    "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod"})


# Facts are plain dataclasses, hashed by value (unsafe_hash) as frozen ones would be, and never
# changed once built: a frozen dataclass costs about five times as much to make (each field
# goes through object.__setattr__), and the builder makes one per fact on every call.
@dataclass(unsafe_hash=True)
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


@dataclass(unsafe_hash=True)
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


@dataclass(unsafe_hash=True)
class Event:
    """A procedure or a medication, with when it happened or was ordered."""

    concept: str
    reference: str
    text: str
    when: datetime | None


# a record's tables, made without a Python frame each (a record is made on every call)
_lists: Callable[[], defaultdict[str, list[Any]]] = partial(defaultdict, list)
_counts: Callable[[], defaultdict[str, int]] = partial(defaultdict, int)


@dataclass
class PatientRecord:
    patient_id: str
    as_of: datetime
    birth_date: date | None = None
    sex: str | None = None
    patient_reference: str | None = None
    findings: dict[str, list[Finding]] = field(default_factory=_lists)
    measurements: dict[str, list[Measurement]] = field(default_factory=_lists)
    procedures: dict[str, list[Event]] = field(default_factory=_lists)
    medications: dict[str, list[Event]] = field(default_factory=_lists)
    answers: dict[str, ClinicianAnswer] = field(default_factory=dict)  # score/criterion
    read: set[str] = field(default_factory=set)
    # on encounter-start: the Encounter in context, the concepts it gives as its reason, and
    # the references of the Conditions it names as its reason
    encounter_id: str | None = None
    encounter_reasons: dict[str, str] = field(default_factory=dict)
    encounter_reason_refs: set[str] = field(default_factory=set)
    missing: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=_counts)
    # results waiting to be read newest first (RecordBuilder._read_newest), during build()
    deferred: list[_Deferred] = field(default_factory=list, repr=False)

    @property
    def age(self) -> int | None:
        if self.birth_date is None:
            return None
        today = self.as_of.date()
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass(frozen=True, eq=False, slots=True)
class _Spec:
    """What the readers use of one concept's cards/ entry, copied once per plan: a pydantic
    model's attribute costs about three times a slot to read, and each result read asks
    several of them."""

    concept: Concept  # the entry itself (implausible() words its bounds)
    kind: str
    label: str
    unit: str | None
    valence: int | None
    # plausible bounds in `unit` (without any: the largest finite floats, so that only a
    # value that is not a finite number goes on to `implausible`)
    lowest: float
    highest: float
    words: str  # unit_words(unit)
    present_values: frozenset[str]
    absent_values: frozenset[str]
    plain_unit: bool  # a unit that is not blank: a value given in it is used as it is

    @classmethod
    def of(cls, concept: Concept) -> _Spec:
        bounds, unit = concept.plausible, concept.unit
        return cls(concept, concept.kind, concept.label, unit, concept.valence,
                   bounds.min if bounds is not None else -sys.float_info.max,
                   bounds.max if bounds is not None else sys.float_info.max,
                   unit_words(unit), frozenset(concept.present_values),
                   frozenset(concept.absent_values), bool(unit and unit.strip()))


@dataclass(frozen=True, eq=False, slots=True)
class _Plan:
    """What the builder does with a resource coded with one set of concepts, worked out once
    per set from cards/ (RecordBuilder._plan), so that each resource costs one lookup.
    One plan per set: compared and hashed by identity (a chart's deferred results are
    grouped by plan)."""

    concepts: frozenset[str]
    label: str  # the display when the resource has none: the first concept's label
    sited: bool  # a body site can add a concept (Terminology.sited)
    # results older than `as_of` minus this are outside every rule's window (None: no limit,
    # or a finding recorded as an Observation, which is always read)
    window: timedelta | None
    newest_first: bool  # results the rules compare: read newest first (_read_newest)
    # each concept with what is read of its cards/ entry, in the order `concepts` iterates
    # (which is the order facts are added in, as before plans carried them)
    specs: tuple[tuple[str, _Spec], ...]


# a result waiting to be read newest first: (when, the raw Observation, its status, its plan);
# a plain tuple, as a chart defers hundreds
_Deferred = tuple[datetime, dict[str, Any], str, _Plan]


# The rules count results up to 12 hours ahead of "now" (clock skew), as facts.py and dvt.py do
RESULT_SLACK = timedelta(hours=12)
_WHEN = itemgetter(0)  # of a _Deferred
_PLAN = itemgetter(3)  # of a _Deferred
_OUTSIDE = "Observation outside the rules' time windows"  # (a count)


def _window_start(as_of: datetime, window: timedelta | None) -> datetime | None:
    """The moment a plan's window starts: a result older than it (as_of - when > window) is
    outside every rule's window. None: no window."""
    if window is None:
        return None
    try:
        return as_of - window
    except OverflowError:  # a window reaching before year 1 leaves nothing out
        return None


# ---------------------------------------------------------------- helpers


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
    text = text.replace("\u200b", "")
    return _SEMANTIC_TAG.sub("", text).strip() if ")" in text else text.strip()


def _display(codeable: Codeable | None, fallback: str) -> str:
    if codeable is None:
        return fallback
    if codeable.text:
        return clinical_text(codeable.text)
    for coding in codeable.codings:
        if coding.display:
            return clinical_text(coding.display)
    return fallback


def _display_of(value: dict[str, Any] | None, fallback: str) -> str:
    """_display of a CodeableConcept as sent, already checked (fhir.checked_codeable)."""
    if value is None:
        return fallback
    text = value.get("text")
    if text:
        return clinical_text(text)
    for coding in value.get("coding") or ():
        display = coding.get("display")
        if display:
            return clinical_text(display)
    return fallback


def _result_label(obs: _ObservationRead, plan: _Plan, raw: dict[str, Any]) -> str:
    """A result as the chart names it, with its body site: for a finding's text and for
    the report of a value skipped (a measurement's own text names its concept)."""
    return _display_of(obs.code, plan.label) + _site_words(raw.get("bodySite"))


def _site_words(body_sites: Any) -> str:
    """' at <site>' for a finding whose body site is recorded (what makes it saddle-area or
    one-sided), '' otherwise."""
    if not body_sites:
        return ""
    sites = body_sites if isinstance(body_sites, list) else [body_sites]
    words = []
    for site in sites:
        if isinstance(site, dict):
            codings = site.get("coding")
            text = site.get("text") or next(
                (c.get("display") for c in (codings if isinstance(codings, list) else ())
                 if isinstance(c, dict) and isinstance(c.get("display"), str)), None)
            if isinstance(text, str):
                words.append(clinical_text(text))
    sides = [w.lower() for w in words if w.lower() in _SIDES]
    places = [w for w in words if w.lower() not in _SIDES]
    return (f" at {', '.join(places)}" if places else "") + "".join(f", {w}" for w in sides)


_SIDES = {"left", "right", "right and left", "bilateral"}


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "date unknown"


def _named(raw: dict[str, Any], kind: str) -> str:
    """How a resource is cited: Observation/abc, or the type alone when it has no usable id."""
    ident = raw.get("id")
    return f"{kind}/{ident}" if isinstance(ident, str) and ident else f"{kind} (no id)"


def _all_of_type(items: list[Any], kind: str) -> bool:
    """Is every entry a JSON object whose resourceType is `kind` (and is there one)?"""
    try:  # decoded JSON: only an object can be indexed by a string (others: TypeError)
        return set(map(_RESOURCE_TYPE, items)) == {kind}
    except (KeyError, TypeError):  # not an object, no resourceType, or an unhashable one
        return False


_RESOURCE_TYPE = itemgetter("resourceType")


def _report(record: PatientRecord, raw: dict[str, Any], exc: Invalid) -> None:
    ident = raw.get("id") if isinstance(raw.get("id"), str) else "?"
    record.skipped.append(f"{raw.get('resourceType')}/{ident}: invalid FHIR ({exc})")


def _required(value: Any, path: str) -> None:
    if value is None:
        raise Invalid(path, "required")


class _ObservationRead(NamedTuple):
    """The elements of one Observation the rules use, each checked."""

    ref: str
    code: dict[str, Any] | None  # checked (fhir.checked_codeable)
    status: str
    when: datetime | None
    quantity: fhir.Quantity | None
    integer: int | None
    boolean: bool | None
    answer: Codeable | None  # valueCodeableConcept
    absent_reason: bool  # dataAbsentReason given (and so no value)
    low: fhir.Quantity | None
    high: fhir.Quantity | None
    interpretation: str | None
    tentative: bool  # status registered, preliminary or unknown
    subject: str | None  # Observation.subject.reference


# made without the Python frame of a NamedTuple's __new__ (one per result read)
_new_read = partial(tuple.__new__, _ObservationRead)


def _read_observation(raw: dict[str, Any], status: str, when: datetime | None,
                      ) -> _ObservationRead:
    """`when` is effectiveDateTime already read; the other effective[x] are read here."""
    code = fhir.checked_codeable(raw, "code")
    if code is None:
        raise Invalid("code", "required")
    fhir.fhir_id(raw)  # checked: a malformed id is reported
    if when is None:
        when = (fhir.date_time(raw, "effectiveDateTime") or fhir.date_time(raw, "effectiveInstant")
                or fhir.period_start(raw, "effectivePeriod") or fhir.date_time(raw, "issued"))
    values = _OBS_VALUES.intersection(raw)
    quantity = integer = boolean = answer = None
    if values:
        if len(values) > 1:
            raise Invalid("value[x]", f"more than one value ({', '.join(sorted(values))})")
        (value,) = values  # the one the rules read, if it is one of theirs
        if value == "valueQuantity":
            quantity = fhir.quantity(raw, value)
        elif value == "valueInteger":
            integer = fhir.integer(raw, value)
        elif value == "valueBoolean":
            boolean = fhir.boolean(raw, value)
        elif value == "valueCodeableConcept":
            answer = fhir.codeable(raw, value)
    absent_reason = fhir.codeable(raw, "dataAbsentReason") if "dataAbsentReason" in raw else None
    if absent_reason is not None and values:
        raise Invalid("dataAbsentReason", "present with a value (obs-6)")
    interpretation = low = high = None
    if "interpretation" in raw:
        interpretations = fhir.elements(raw, "interpretation")
        if interpretations:
            interpretation = fhir.concept(interpretations[0], "interpretation[0].").first_code
    if "referenceRange" in raw:
        ranges = fhir.elements(raw, "referenceRange")
        low = fhir.quantity(ranges[0], "low", "referenceRange[0].") if ranges else None
        high = fhir.quantity(ranges[0], "high", "referenceRange[0].") if ranges else None
    subject = fhir.reference(raw, "subject")
    return _new_read((_named(raw, "Observation"),
                      code, status, when, quantity, integer, boolean, answer,
                      absent_reason is not None, low, high, interpretation,
                      status in _OBS_TENTATIVE, subject))


def _presence(obs: _ObservationRead, spec: _Spec) -> bool | None:
    """Yes, no, or None: no answer, or an answer of "unknown" (dataAbsentReason, an Unknown
    code), which is never read as present."""
    if obs.absent_reason:
        return None
    if obs.boolean is not None:
        return obs.boolean
    if obs.answer is not None:
        codes = obs.answer.codes()
        if codes & _ABSENT_CODES or codes.intersection(spec.absent_values):
            return False
        if codes & _PRESENT_CODES or codes.intersection(spec.present_values):
            return True
    return None


def _answered_unknown(obs: _ObservationRead, present: bool | None) -> bool:
    return obs.absent_reason or (present is None and obs.answer is not None
                                 and bool(obs.answer.codes() & _UNKNOWN_CODES))


def _reference_range(obs: _ObservationRead, spec: _Spec) -> tuple[float | None, float | None]:
    """The result's reference range in the concept's unit: both bounds dropped if either
    cannot be converted, each dropped if implausible."""
    unit = spec.unit
    low = high = None
    try:
        if obs.low is not None and obs.low.value is not None and unit:
            low = convert(obs.low.value, obs.low.unit, unit, spec.valence)
        if obs.high is not None and obs.high.value is not None and unit:
            high = convert(obs.high.value, obs.high.unit, unit, spec.valence)
    except UnitError:
        low = high = None
    if low is not None and implausible(spec.concept, low):
        low = None
    if high is not None and implausible(spec.concept, high):
        high = None
    return low, high


_NO_RANGE: tuple[None, None] = (None, None)


def implausible(concept: Concept, value: float | None) -> str | None:
    """Why a value cannot be a real measurement of this concept, or None if it can.

    The bounds are cards/concepts.toml's `plausible` (in the concept's canonical unit): what
    no living patient or assay gives, not a clinical threshold. A value outside them (such as
    a temperature of 1e308 or a negative D-dimer) is skipped and reported, never used."""
    if value is None:
        return None
    if not math.isfinite(value):
        return f"value {value} is not a number"
    bounds = concept.plausible
    if bounds is not None and not bounds.min <= value <= bounds.max:
        return (f"value {value:g} {concept.unit or ''} is outside the plausible range "
                f"{bounds.min:g}-{bounds.max:g}").replace("  ", " ")
    return None


# ---------------------------------------------------------------- readers


class RecordBuilder:
    """Turns raw FHIR JSON into a PatientRecord for one patient at one moment."""

    def __init__(self, content: Content, terminology: Terminology) -> None:
        self.content = content
        self.terminology = terminology
        self.lookback = content.lookback_days()
        # observation concepts with a bounded window: results older than it are not read
        self._windows = {
            concept: days for concept, days in self.lookback.items()
            if days is not None and concept in content.concepts
            and content.concepts[concept].kind == "observation"}
        # what the rules ask of each result concept: its newest value, its newest yes/no
        self._needs: dict[str, frozenset[str]] = {}
        asked: dict[str, set[str]] = defaultdict(set)
        for fact in content.facts():
            if fact.observation is not None:
                asked[fact.observation].add("value" if fact.present is None else "present")
        for assay in content.dvt.ddimer.assays:
            asked[assay.concept].add("value")
        self._needs = {concept: frozenset(kinds) for concept, kinds in asked.items()}
        self._plans: dict[frozenset[str], _Plan] = {}
        # system -> code -> plan (None: no concept) of results coded the usual way (one
        # coding): a chart's hundreds of results repeat a few codes
        self._code_plans: dict[str, dict[str, _Plan | None]] = {}

    def _plan(self, concepts: frozenset[str]) -> _Plan:
        plan = self._plans.get(concepts)
        if plan is None:
            plan = self._plans[concepts] = self._make_plan(concepts)
        return plan

    def _plan_for(self, code: Any) -> _Plan | None:
        """The plan of a resource's `code` (None: it names no concept)."""
        try:  # the usual code, of one coding, seen before: two dict reads
            (coding,) = code["coding"]
            return self._code_plans[coding["system"]][coding["code"]]
        except (KeyError, TypeError, ValueError):
            return self._plan_of_code(code)

    def _plan_of_code(self, code: Any) -> _Plan | None:
        """The plan of a resource's `code` (None: it names no concept), remembered for a
        code of one coding, whose concepts depend on its system and code alone."""
        concepts = self.terminology.concepts_of(code)
        plan = self._plan(concepts) if concepts else None
        try:
            (coding,) = code["coding"]
            system, value = coding["system"], coding["code"]
        except (KeyError, TypeError, ValueError):  # not of that shape: nothing to remember
            return plan
        if type(system) is str and type(value) is str:
            if len(self._code_plans) >= 64 or len(self._code_plans.get(system, ())) >= 4096:
                self._code_plans.clear()  # codes come from the caller: stay bounded
            self._code_plans.setdefault(system, {})[value] = plan
        return plan

    def _at_site(self, plan: _Plan, raw: dict[str, Any]) -> _Plan:
        """The plan once the resource's body site has added its concepts (a saddle-area or
        one-sided finding)."""
        if not plan.sited:
            return plan
        return self._plan(plan.concepts | self.terminology.concepts_at_site(
            plan.concepts, raw.get("bodySite")))

    def _make_plan(self, concepts: frozenset[str]) -> _Plan:
        windows = [self._windows.get(concept) for concept in concepts]
        days = [window for window in windows if window is not None]
        if len(self._plans) >= 4096:  # sets come from cards/'s concepts, but stay bounded
            self._plans.clear()
        return _Plan(
            concepts,
            self.content.concepts[sorted(concepts)[0]].label,
            any(concept in self.terminology.sited for concept in concepts),
            timedelta(days=max([0, *days]) + 1) if len(days) == len(windows) else None,
            all(concept in self._needs and self.content.concepts[concept].kind == "observation"
                for concept in concepts),
            tuple((concept, _Spec.of(self.content.concepts[concept])) for concept in concepts),
        )

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
        record = PatientRecord(patient_id=patient_id, as_of=as_of or datetime.now(UTC),
                               encounter_id=encounter_id)
        record.missing.update(missing or {})
        readers, counts = self._readers, record.counts
        for kind, items in resources.items():
            record.read.add(kind)
            reader = readers.get(kind)
            if reader is not None and items and _all_of_type(items, kind):
                # the usual list (up to thousands of results): every entry a resource of its
                # kind, as checked at C speed; each is read as the loop below would read it
                counts[kind] += len(items)
                if reader is RecordBuilder._observation:
                    self._observations(record, items)
                    continue
                for raw in items:
                    try:
                        reader(self, record, raw)
                    except Invalid as exc:
                        _report(record, raw, exc)
                continue
            for raw in items:
                if not isinstance(raw, dict):
                    record.skipped.append(f"{kind}: an entry that is not a JSON object")
                    continue
                rtype = raw.get("resourceType")
                if type(rtype) is not str:
                    rtype = str(rtype)
                counts[rtype] += 1
                if rtype == "OperationOutcome":
                    record.skipped.append(f"{kind}: the FHIR server returned an OperationOutcome")
                    continue
                actual = readers.get(rtype, reader)
                if actual is None:
                    continue
                try:
                    actual(self, record, raw)
                except Invalid as exc:
                    _report(record, raw, exc)
        self._read_newest(record)
        return record

    # Each reader filters by code on the raw JSON first, then reads (and checks) what the
    # rules use; a malformed element raises Invalid, which build() reports.

    def _patient(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        pid = fhir.fhir_id(raw)
        birth = fhir.date_only(raw, "birthDate")
        gender = fhir.code(raw, "gender")
        if pid and pid != record.patient_id:
            record.skipped.append(f"Patient/{pid}: not the patient in context, ignored")
            return
        record.birth_date = birth
        record.sex = gender
        record.patient_reference = f"Patient/{pid or record.patient_id}"

    def _condition(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        plan = self._plan_for(raw.get("code"))
        if plan is None:
            return
        if plan.sited:
            plan = self._at_site(plan, raw)
        code = fhir.checked_codeable(raw, "code")
        fhir.fhir_id(raw)  # checked: a malformed id is reported
        if raw.get("subject") is None:
            raise Invalid("subject", "required")
        subject = fhir.reference(raw, "subject")
        verification = fhir.checked_first_code(raw, "verificationStatus")
        clinical = fhir.checked_first_code(raw, "clinicalStatus")
        onset = fhir.date_time(raw, "onsetDateTime")
        recorded = fhir.date_time(raw, "recordedDate")
        # (most Conditions have not abated: no call to find so)
        abatement = fhir.date_time(raw, "abatementDateTime") if "abatementDateTime" in raw else None
        if verification == "entered-in-error" or not self._about_patient(record, subject, raw):
            return
        if verification == "refuted":
            status: FindingStatus = "refuted"
        elif clinical in _HISTORY or (clinical is None and abatement):
            status = "history"
        else:
            status = "active"
        when = onset or recorded
        tentative = verification in {"unconfirmed", "provisional", "differential"}
        label = _display_of(code, plan.label)
        if sites := raw.get("bodySite"):
            label += _site_words(sites)
        state = _CONDITION_STATES[status]
        qualifier = f"{verification}, " if tentative else ""
        text = f"{label} ({state}{qualifier}{_day(when)})"
        ref = _named(raw, "Condition")
        for concept, spec in plan.specs:
            if spec.kind == "condition":
                record.findings[concept].append(
                    Finding(concept, status, ref, text, when, tentative, recorded, abatement)
                )

    def _observation(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        """One Observation (found in a list build() reads entry by entry)."""
        self._observations(record, (raw,))

    def _observations(self, record: PatientRecord, items: Iterable[dict[str, Any]]) -> None:
        """Charts hold years of results: each is first placed by its code (one lookup), its
        status and its date; only then is the rest read, if any rule looks that far back.
        One loop for a whole list (a chart's results are most of what it sends); a result
        whose read elements are malformed is reported and skipped, as build() does.
        Each plan's window is compared as the moment it starts, worked out once per call."""
        as_of, deferred = record.as_of, record.deferred
        starts: dict[_Plan, datetime | None] = {}  # plan -> its window's start (None: none)
        dropped = 0  # outside the windows: counted here, added to the record's counts below
        for raw in items:
            try:
                plan = self._plan_for(raw.get("code"))
                if plan is None:
                    continue
                status = raw.get("status")
                if type(status) is not str or status not in _OBS_PLACED:
                    status = fhir.code(raw, "status")  # (an invalid code raises)
                    if status in _OBS_NEVER:
                        continue
                when = fhir.date_time(raw, "effectiveDateTime")
                if when is not None:
                    try:
                        start = starts[plan]
                    except KeyError:
                        start = starts[plan] = _window_start(as_of, plan.window)
                    if start is not None and when < start:
                        # older than every rule's window: dropped before the rest is read
                        # (findings recorded as Observations have no window and are kept)
                        if not dropped:  # the count's place among the counts: as first met
                            record.counts[_OUTSIDE] += 0
                        dropped += 1
                        continue
                if status is None:
                    raise Invalid("status", "required")
                if plan.sited:
                    plan = self._at_site(plan, raw)
                if when is not None and plan.newest_first:
                    deferred.append((when, raw, status, plan))
                    continue
                self._read_now(record, raw, status, when, plan)
            except Invalid as exc:
                _report(record, raw, exc)
        if dropped:
            record.counts[_OUTSIDE] += dropped

    def _read_now(self, record: PatientRecord, raw: dict[str, Any], status: str,
                  when: datetime | None, plan: _Plan) -> None:
        """A result read in full as it comes: a finding, or one without a date."""
        obs = _read_observation(raw, status, when)
        if not self._about_patient(record, obs.subject, raw):
            return
        label = None  # made once a finding's text needs it
        for concept, spec in plan.specs:
            if spec.kind == "condition":
                # an exam finding or symptom recorded as an Observation; one answered
                # "unknown" (dataAbsentReason, or an Unknown code) is no answer at all
                present = _presence(obs, spec)
                if _answered_unknown(obs, present):
                    record.counts["Observation answered unknown"] += 1
                    continue
                finding: FindingStatus = "refuted" if present is False else "active"
                state = "recorded as absent, " if present is False else ""
                if label is None:
                    label = _result_label(obs, plan, raw)
                record.findings[concept].append(
                    Finding(concept, finding, obs.ref, f"{label} ({state}{_day(obs.when)})",
                            obs.when, obs.tentative)
                )
            elif spec.kind == "observation":
                measurement = self._measurement(record, obs, concept, spec, raw, plan)
                if measurement is not None:
                    record.measurements[concept].append(measurement)

    def _read_newest(self, record: PatientRecord) -> None:
        """Results the rules compare (heart rate, potassium, D-dimer...) are read newest
        first, and only until each concept has what its rules ask: the newest value, the
        newest yes/no. The rules look at nothing older, so a chart with months of results
        reads one or two of them; results of the same moment are all read."""
        upper = record.as_of + RESULT_SLACK
        deferred = sorted(record.deferred, key=_WHEN, reverse=True)
        record.deferred.clear()
        needs, wanted = self._needs, {}
        for plan in set(map(_PLAN, deferred)):  # (loops: a comprehension is a call)
            for concept in plan.concepts:
                wanted[concept] = set(needs[concept])
        done_at: dict[str, datetime] = {}
        last_done = upper  # the oldest moment in done_at (each concept is done once, in turn)
        looked_at = len(deferred)
        skipped = 0  # looked at, but every concept was done at another moment
        tried: list[tuple[datetime, _Plan]] = []  # read (or tried) before the stop
        for index, (when, raw, status, plan) in enumerate(deferred):
            if len(done_at) == len(wanted) and when < last_done:
                looked_at = index  # every concept is done with newer results: stop here
                break
            live = plan.specs  # all of them until a concept is done
            if done_at:
                live = tuple([(c, spec) for c, spec in live if done_at.get(c, when) == when])
                if not live:
                    skipped += 1
                    continue
            tried.append((when, plan))
            try:
                obs = _read_observation(raw, status, when)
            except Invalid as exc:
                _report(record, raw, exc)
                continue
            if not self._about_patient(record, obs.subject, raw):
                continue
            for concept, spec in live:
                measurement = self._measurement(record, obs, concept, spec, raw, plan)
                if measurement is None:
                    continue
                record.measurements[concept].append(measurement)
                if when <= upper:
                    if measurement.value is not None:
                        wanted[concept].discard("value")
                    if measurement.present is not None:
                        wanted[concept].discard("present")
                    if not wanted[concept] and concept not in done_at:
                        done_at[concept] = last_done = when
        # not read: every result after the stop, and those before it whose concepts were
        # all done at another moment (done_at never changes a concept's moment once set, so
        # one skipped above stays so; one tried is judged by the moments known now)
        not_read = len(deferred) - looked_at + skipped
        for when, plan in tried:
            for concept in plan.concepts:
                if done_at.get(concept, when) == when:
                    break
            else:
                not_read += 1
        record.counts["Observation not read: older than the newest the rules use"] += not_read

    def _measurement(
        self, record: PatientRecord, obs: _ObservationRead, concept: str, spec: _Spec,
        raw: dict[str, Any], plan: _Plan,
    ) -> Measurement | None:
        """The result as a measurement of `concept`, or None (no value, or one skipped and
        reported: the report names the result as the chart does, `_result_label`)."""
        unit = spec.unit
        value: float | None = None
        quantity = obs.quantity
        if quantity is not None and quantity.value is not None:
            if not unit or (quantity.unit == unit and spec.plain_unit):  # (as convert() does)
                value = quantity.value
            else:
                try:
                    value = convert(quantity.value, quantity.unit, unit, spec.valence)
                except UnitError as exc:
                    record.skipped.append(f"{obs.ref}: {_result_label(obs, plan, raw)}: {exc}")
                    return None
        elif obs.integer is not None:
            value = float(obs.integer)
        # (no yes/no answer: _presence would say None)
        present = (None if obs.boolean is None and obs.answer is None
                   else _presence(obs, spec))
        if value is None:
            if present is None:
                return None
        elif (not spec.lowest <= value <= spec.highest  # else: plausible, a finite number
              and (why := implausible(spec.concept, value)) is not None):
            record.skipped.append(f"{obs.ref}: {_result_label(obs, plan, raw)} {why}; not used")
            return None
        low, high = (_reference_range(obs, spec) if obs.low is not None or obs.high is not None
                     else _NO_RANGE)
        if value is not None:
            shown = f"{value:g}{spec.words}"
        elif obs.answer is not None:
            shown = _display(obs.answer, "yes" if present else "no")  # "Pregnant"
        else:
            shown = "yes" if present else "no"
        tentative = obs.tentative
        status = f", {obs.status}" if tentative else ""
        text = f"{spec.label} {shown} ({_day(obs.when)}{status})"
        return Measurement(concept, obs.ref, text, obs.when, value, present, unit, low, high,
                           obs.interpretation, tentative)

    def _procedure(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        concepts = self.terminology.concepts_of(raw.get("code"))
        if not concepts:
            return
        status = fhir.code(raw, "status")
        if status in {"entered-in-error", "not-done", "preparation"}:
            return
        _required(status, "status")
        code = fhir.checked_codeable(raw, "code")
        fhir.fhir_id(raw)
        _required(raw.get("subject"), "subject")
        subject = fhir.reference(raw, "subject")
        performed = fhir.date_time(raw, "performedDateTime")
        started = fhir.period_start(raw, "performedPeriod")
        if not self._about_patient(record, subject, raw):
            return
        when = performed or started
        ref = _named(raw, "Procedure")
        text = f"{_display_of(code, self._plan(concepts).label)} ({_day(when)})"
        for concept in concepts:
            record.procedures[concept].append(Event(concept, ref, text, when))

    def _medication(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        concepts = self.terminology.concepts_of(raw.get("medicationCodeableConcept"))
        if not concepts:
            return
        status = fhir.code(raw, "status")
        if status not in _MED_ACTIVE:
            return
        kind = ("MedicationRequest" if raw.get("resourceType") == "MedicationRequest"
                else "MedicationStatement")
        code = fhir.checked_codeable(raw, "medicationCodeableConcept")
        fhir.fhir_id(raw)
        _required(raw.get("subject"), "subject")
        subject = fhir.reference(raw, "subject")
        when = fhir.date_time(raw, "authoredOn" if kind == "MedicationRequest"
                              else "effectiveDateTime")
        if not self._about_patient(record, subject, raw):
            return
        ref = _named(raw, kind)
        text = f"{_display_of(code, self._plan(concepts).label)} ({_day(when)})"
        for concept in concepts:
            record.medications[concept].append(Event(concept, ref, text, when))

    def _encounter(self, record: PatientRecord, raw: dict[str, Any]) -> None:
        """The reason for the encounter in context: coded reasons and the Conditions named."""
        if record.encounter_id is None or raw.get("id") != record.encounter_id:
            return
        reasons = raw.get("reasonCode")
        for codeable in reasons if isinstance(reasons, list) else ():
            for concept in self.terminology.concepts_of(codeable):
                record.encounter_reasons.setdefault(
                    concept, f"Encounter/{record.encounter_id}")
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

    @staticmethod
    def _about_patient(record: PatientRecord, reference: str | None,
                       raw: dict[str, Any]) -> bool:
        """Is a resource whose subject is `reference` about the patient in context?"""
        if not reference:
            return True  # searched by patient: trust the server
        tail = reference.rstrip("/").rpartition("/")[2]
        if tail == record.patient_id or reference.startswith("urn:uuid:"):
            return True
        record.skipped.append(f"{_named(raw, str(raw.get('resourceType')))}: about another "
                              "patient, ignored")
        return False
