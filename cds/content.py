"""The clinical content in `cards/`, loaded and validated into typed models.

Clinicians edit TOML; this module makes sure what they wrote is consistent (every concept,
source and order a rule names exists) before the service answers a single hook call.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from functools import cache, wraps
from pathlib import Path
from typing import Annotated, Any, Concatenate, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, model_validator

from cds.fhir.valuesets import ExpandedValueSet, load_valuesets

Kind = Literal["condition", "observation", "procedure", "medication"]
Indicator = Literal["info", "warning", "critical"]
# How soon a card's advice must be acted on; cards of one indicator are ordered by it.
ActWithin = Literal["now", "hours", "same day", "days"]
ACT_ORDER: dict[str, int] = {"now": 0, "hours": 1, "same day": 2, "days": 3}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRef(Strict):
    label: str  # short, as a card shows it
    title: str
    url: str
    year: int | None = None
    publisher: str | None = None
    note: str | None = None


class ContentCoding(Strict):
    system: str
    code: str
    display: str
    checked: str
    match: Literal["exact", "prefix", "range"] = "exact"
    note: str | None = None


class SiteQualifier(Strict):
    """A finding recorded with a body site in a value set means this concept too
    (numbness with a perineal bodySite is saddle anaesthesia; sciatica with a left
    laterality is left-sided sciatica)."""

    finding: str  # a concept id
    site: str  # a value set id (cards/valuesets/)


class Plausible(Strict):
    """Bounds no real measurement falls outside (in the concept's unit): a guard against
    corrupt or hostile values, not a clinical threshold."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Plausible:
        if not self.min < self.max:
            raise ValueError("plausible: min must be below max")
        return self


class Concept(Strict):
    label: str
    kind: Kind
    codings: list[ContentCoding]
    valuesets: list[str] = Field(default_factory=list)  # expanded value sets (cards/valuesets)
    qualified: list[SiteQualifier] = Field(default_factory=list)
    # coded answers of a yes/no Observation (e.g. pregnancy status: Pregnant / Not pregnant)
    present_values: list[str] = Field(default_factory=list)
    absent_values: list[str] = Field(default_factory=list)
    unit: str | None = None
    units: list[str] = Field(default_factory=list)
    # equivalents per mole, for converting mEq/L (1 for sodium and potassium)
    valence: int | None = None
    plausible: Plausible | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _plausible_for_observations(self) -> Concept:
        if self.kind == "observation" and self.unit and self.plausible is None:
            raise ValueError("an observation with a unit names its plausible range "
                             "(plausible = { min = …, max = … })")
        return self


class Order(Strict):
    label: str
    resource_type: Literal["ServiceRequest"] = "ServiceRequest"
    codings: list[ContentCoding]
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"
    note: str | None = None
    source: str


# ---------------------------------------------------------------- facts


class Fact(Strict):
    """One thing a rule asks about the patient; see cards/README.md."""

    condition: str | None = None
    observation: str | None = None
    procedure: str | None = None
    medication: str | None = None
    score: str | None = None
    age_at_least: int | None = None
    age_below: int | None = None
    status: Literal["active", "history", "any"] = "active"
    within_days: int | None = None
    # only records older than this: an old diagnosis still active on a problem list is
    # history for the scores that count history
    older_than_days: int | None = None
    # a record that ended (abatementDateTime) in the last N days: a pregnancy that ended at
    # birth 3 weeks ago means the puerperium
    ended_within_days: int | None = None
    # only confirmed records: provisional, differential and unconfirmed ones are suspicions
    confirmed: bool = False
    above: float | None = None
    below: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    present: bool | None = None
    band: str | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Fact:
        subjects = [self.condition, self.observation, self.procedure, self.medication, self.score]
        count = (sum(s is not None for s in subjects) + (self.age_at_least is not None)
                 + (self.age_below is not None))
        if count != 1:
            raise ValueError(
                "a fact names exactly one of condition, observation, procedure, "
                "medication, score, age_at_least, age_below"
            )
        if self.observation is not None:
            comparators = [self.above, self.below, self.at_least, self.at_most, self.present]
            if sum(c is not None for c in comparators) != 1:
                raise ValueError(
                    "an observation fact has one of above/below/at_least/at_most/present"
                )
        if self.score is not None and self.band is None:
            raise ValueError("a score fact names the band it asks for")
        return self

    @property
    def concept_id(self) -> str | None:
        return self.condition or self.observation or self.procedure or self.medication


class Criterion(Strict):
    """A named, sourced yes/no question about the patient, answered met / not met / unknown."""

    id: str
    label: str
    when: Annotated[list[Fact], Field(min_length=1)]
    and_when: list[Fact] = Field(default_factory=list)  # if given, one of these must hold too
    points: float = 0
    weight: float = 0
    # a clinician's judgement that lowers a score (e.g. "alternative diagnosis as likely"):
    # applied when the chart documents it, otherwise stated in words rather than widening
    # the range, so that it can only err towards more testing
    judgement: bool = False
    ask: str | None = None  # what to ask or examine when unknown
    check: str | None = None  # the same, in a few words, for the checklist card
    # a red flag that matters whatever the patient presents with (cauda equina, PE signs):
    # its family's card shows even when the chart records no current thigh, leg or back
    # complaint; other flags need that presentation
    standalone: bool = False
    standalone_with: list[Fact] = Field(default_factory=list)
    source: str | None = None
    note: str | None = None


# ---------------------------------------------------------------- scores


class Band(Strict):
    id: str
    label: str
    min: float | None = None
    max: float | None = None


class Score(Strict):
    id: str
    title: str
    short: str
    source: str
    also: list[str] = Field(default_factory=list)
    criteria: list[Criterion]
    bands: list[Band]


class DdimerAssay(Strict):
    concept: str
    label: str
    cutoff: float  # in the concept's canonical unit
    age_adjust_from: int | None = None
    age_factor: float | None = None
    source: str
    note: str | None = None


class Ddimer(Strict):
    valid_hours: int
    source: str
    assays: list[DdimerAssay]
    note: str | None = None


class PathwayStep(Strict):
    id: str
    when_band: str
    when_ddimer: Literal["none", "negative", "positive", "any"] = "any"
    indicator: Indicator
    summary: str
    detail: str
    orders: list[str] = Field(default_factory=list)
    recommended: str | None = None
    act_within: ActWithin = "days"


class Population(Strict):
    """Patients the score's pathway does not cover (pregnancy, under-18s): the card says
    what applies instead of scoring them as adults."""

    id: str  # also the band its pathway steps are written for
    label: str
    when: list[Fact]
    source: str


class DvtPathway(Strict):
    diagnosed_when: list[Fact]
    populations: list[Population] = Field(default_factory=list)
    score: Score
    ddimer: Ddimer
    steps: list[PathwayStep]
    source: str
    card_label: str


# ---------------------------------------------------------------- red flags


class RedFlagFamily(Strict):
    id: str
    title: str
    short: str  # the family in two or three words, for the checklist card
    indicator: Indicator
    act_within: ActWithin
    escalate_to: Indicator | None = None
    escalate_when: list[Fact] = Field(default_factory=list)
    escalate_reason: str | None = None
    urgency: str
    summary: str
    action: str
    source: str
    also: list[str] = Field(default_factory=list)
    orders: list[str] = Field(default_factory=list)
    show_score: str | None = None  # a score whose criteria the card shows (e.g. wells_pe)
    flags: list[Criterion]


class RedFlags(Strict):
    families: list[RedFlagFamily]
    source: str


class Checklist(Strict):
    """The one card that says what the coded record cannot answer: ask or examine."""

    summary: str
    intro: str
    wells_line: str
    source: str


class Presentation(Strict):
    """Whether the patient presents with the problem now; without it the service is quiet."""

    within_days: int
    concepts: list[str]
    dvt_concepts: list[str]  # complaints of the leg itself, for which Wells applies
    source: str


# ---------------------------------------------------------------- differential


class Cause(Strict):
    id: str
    label: str
    group: Literal["musculoskeletal", "neurological", "vascular"]
    source: str
    documented: list[Fact]
    supports: list[Criterion] = Field(default_factory=list)
    against: list[Criterion] = Field(default_factory=list)
    helps: list[str] = Field(default_factory=list)
    orders: list[str] = Field(default_factory=list)


class Differential(Strict):
    title: str
    documented_weight: float
    show_from_points: float
    show_at_most: int
    method: str
    causes: list[Cause]


class OverrideReasonText(Strict):
    code: str
    display: str


class Texts(Strict):
    service_title: str
    service_description: str
    usage_requirements: str
    disclaimer: str
    evidence_heading: str
    gaps_heading: str
    override_reasons: list[OverrideReasonText]


class Content(Strict):
    """All of cards/, cross-checked."""

    root: str
    texts: Texts
    systems: dict[str, str]
    sources: dict[str, SourceRef]
    concepts: dict[str, Concept]
    orders: dict[str, Order]
    dvt: DvtPathway
    pe_score: Score
    red_flags: RedFlags
    differential: Differential
    presentation: Presentation
    checklist: Checklist
    valuesets: SkipValidation[dict[str, ExpandedValueSet]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> Content:
        problems: list[str] = []
        scores = {self.dvt.score.id: self.dvt.score, self.pe_score.id: self.pe_score}

        def need(kind: str, ident: str | None, table: Mapping[str, object], where: str) -> None:
            if ident is not None and ident not in table:
                problems.append(f"{where}: unknown {kind} {ident!r}")

        def check_fact(fact: Fact, where: str) -> None:
            need("concept", fact.concept_id, self.concepts, where)
            need("score", fact.score, scores, where)
            if fact.score and fact.score in scores:
                bands = {b.id for b in scores[fact.score].bands}
                if fact.band not in bands:
                    problems.append(f"{where}: score {fact.score} has no band {fact.band!r}")
            concept = self.concepts.get(fact.concept_id or "")
            if concept is not None:
                expected = {
                    "condition": fact.condition,
                    "observation": fact.observation,
                    "procedure": fact.procedure,
                    "medication": fact.medication,
                }
                if expected[concept.kind] is None:
                    problems.append(f"{where}: concept {fact.concept_id} is a {concept.kind}")

        def check_criterion(c: Criterion, where: str) -> None:
            need("source", c.source, self.sources, where)
            for fact in [*c.when, *c.and_when, *c.standalone_with]:
                check_fact(fact, f"{where}.{c.id}")

        for cid, concept in self.concepts.items():
            for coding in concept.codings:
                need("system", coding.system, self.systems, f"concept {cid}")
                need("source", coding.checked, self.sources, f"concept {cid}")
            for vs_id in concept.valuesets:
                need("value set", vs_id, self.valuesets, f"concept {cid}")
            for q in concept.qualified:
                need("concept", q.finding, self.concepts, f"concept {cid}")
                need("value set", q.site, self.valuesets, f"concept {cid}")
        for oid, order in self.orders.items():
            need("source", order.source, self.sources, f"order {oid}")
            for coding in order.codings:
                need("source", coding.checked, self.sources, f"order {oid}")
        for score in scores.values():
            for src in [score.source, *score.also]:
                need("source", src, self.sources, f"score {score.id}")
            for c in score.criteria:
                check_criterion(c, f"score {score.id}")
        need("source", self.dvt.ddimer.source, self.sources, "ddimer")
        for assay in self.dvt.ddimer.assays:
            need("concept", assay.concept, self.concepts, "ddimer")
            need("source", assay.source, self.sources, "ddimer")
        for fact in self.dvt.diagnosed_when:
            check_fact(fact, "dvt diagnosed_when")
        for population in self.dvt.populations:
            need("source", population.source, self.sources, f"population {population.id}")
            for fact in population.when:
                check_fact(fact, f"population {population.id}")
        bands = ({b.id for b in self.dvt.score.bands} | {"indeterminate", "diagnosed"}
                 | {p.id for p in self.dvt.populations})
        for band in bands:
            for state in ("none", "negative", "positive"):
                if not any(s.when_band == band and s.when_ddimer in (state, "any")
                           for s in self.dvt.steps):
                    problems.append(f"dvt steps: nothing for band {band} with D-dimer {state}")
        for step in self.dvt.steps:
            if step.when_band not in bands:
                problems.append(f"dvt step {step.id}: unknown band {step.when_band}")
            for order_id in step.orders:
                need("order", order_id, self.orders, f"dvt step {step.id}")
        for fam in self.red_flags.families:
            for src in [fam.source, *fam.also]:
                need("source", src, self.sources, f"red flag family {fam.id}")
            for order_id in fam.orders:
                need("order", order_id, self.orders, f"red flag family {fam.id}")
            for fact in fam.escalate_when:
                check_fact(fact, f"red flag family {fam.id}")
            need("score", fam.show_score, scores, f"red flag family {fam.id}")
            for c in fam.flags:
                check_criterion(c, f"red flag {fam.id}")
        pres = self.presentation
        need("source", pres.source, self.sources, "presentation")
        need("source", self.checklist.source, self.sources, "checklist")
        for cid in [*pres.concepts, *pres.dvt_concepts]:
            need("concept", cid, self.concepts, "presentation")
        for cid in pres.dvt_concepts:
            if cid not in pres.concepts:
                problems.append(f"presentation: dvt concept {cid!r} is not a presentation")
        for cause in self.differential.causes:
            for fact in cause.documented:
                if fact.condition and fact.condition not in pres.concepts:
                    problems.append(f"cause {cause.id}: documented {fact.condition!r} is "
                                    "missing from the presentation concepts")
        for cause in self.differential.causes:
            need("source", cause.source, self.sources, f"cause {cause.id}")
            for fact in cause.documented:
                check_fact(fact, f"cause {cause.id}")
            for c in [*cause.supports, *cause.against]:
                check_criterion(c, f"cause {cause.id}")
            for order_id in cause.orders:
                need("order", order_id, self.orders, f"cause {cause.id}")
        if problems:
            raise ValueError("cards/ content does not hold together:\n  " + "\n  ".join(problems))
        return self

    def facts(self) -> Iterator[Fact]:
        """Every fact any rule asks, wherever it is written."""
        criteria: list[Criterion] = [*self.dvt.score.criteria, *self.pe_score.criteria]
        for fam in self.red_flags.families:
            criteria += fam.flags
            yield from fam.escalate_when
        for cause in self.differential.causes:
            criteria += [*cause.supports, *cause.against]
            yield from cause.documented
        yield from self.dvt.diagnosed_when
        for population in self.dvt.populations:
            yield from population.when
        for c in criteria:
            yield from c.when
            yield from c.and_when

    def lookback_days(self) -> dict[str, int | None]:
        """How far back any rule looks for each observation concept (None: no limit)."""
        out: dict[str, int | None] = {a.concept: None for a in self.dvt.ddimer.assays}
        for fact in self.facts():
            if fact.observation is None:
                continue
            if fact.within_days is None:
                out[fact.observation] = None
            elif fact.observation not in out or out[fact.observation] is not None:
                out[fact.observation] = max(out.get(fact.observation) or 0, fact.within_days)
        return out


def cards_dir() -> Path:
    """Where cards/ lives: $CDS_CARDS_DIR, the copy inside the wheel, or the source checkout."""
    override = os.environ.get("CDS_CARDS_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    for candidate in (here / "_cards", here.parent / "cards"):
        if (candidate / "concepts.toml").exists():
            return candidate
    raise FileNotFoundError("cannot find cards/ (set CDS_CARDS_DIR)")


def _read(path: Path) -> dict:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def load_content(root: Path | None = None) -> Content:
    root = root or cards_dir()
    concepts = _read(root / "concepts.toml")
    rules = root / "rules"
    return Content.model_validate(
        {
            "root": str(root),
            "texts": _read(root / "texts.toml"),
            "systems": concepts["systems"],
            "concepts": concepts["concepts"],
            "sources": _read(root / "sources.toml")["sources"],
            "orders": _read(root / "orders.toml")["orders"],
            "dvt": _read(rules / "dvt.toml"),
            "pe_score": _read(rules / "pe.toml")["score"],
            "red_flags": _read(rules / "red-flags.toml"),
            "differential": _read(rules / "differential.toml"),
            "presentation": _read(rules / "presentation.toml"),
            "checklist": _read(rules / "checklist.toml"),
            "valuesets": load_valuesets(root / "valuesets"),
        }
    )


@cache
def default_content() -> Content:
    return load_content()


P = ParamSpec("P")
T = TypeVar("T")


def per_content(
    work: Callable[Concatenate[Content, P], T],
) -> Callable[Concatenate[Content, P], T]:
    """`work(content, ...)` worked out once per copy of cards/ (and per further arguments,
    which must be hashable), for what every hook call asks of the content: its compiled
    rules, card parts, prefetch templates. A Content is neither hashable nor
    weak-referenceable (a pydantic model), so it is remembered by identity, kept beside its
    answer (an id can be reused once a content is freed); the memo stays small, since a
    service loads one content and the tests a few."""
    memo: dict[tuple[Any, ...], tuple[Content, T]] = {}

    @wraps(work)
    def remembered(content: Content, *args: P.args, **kwargs: P.kwargs) -> T:
        key = (id(content), *args, *kwargs.items())
        entry = memo.get(key)
        if entry is None or entry[0] is not content:
            if len(memo) >= 64:
                memo.clear()
            entry = memo[key] = (content, work(content, *args, **kwargs))
        return entry[1]

    return remembered
