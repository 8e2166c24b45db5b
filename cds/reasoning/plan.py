"""The facts and criteria of cards/, compiled once per Content for the evaluation of each call.

One hook call asks about 140 facts, and on most charts nearly all of them name a concept the
chart does not record at all. Compiling gives each distinct fact a slot (so that a call answers
it once, however many rules ask it), each list of alternatives the concepts it reads (so that a
call sees at a glance that the chart holds none of them), and each fact its time windows and
the words of its "not documented" answer, which depend only on the content.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from cds.content import (
    Cause,
    Content,
    Criterion,
    Fact,
    PathwayStep,
    RedFlagFamily,
    Score,
    per_content,
)

FactKind = Literal["condition", "observation", "procedure", "medication", "score", "age"]
# the FHIR resource type each kind of charted fact is read from
RESOURCE: dict[str, str] = {"condition": "Condition", "observation": "Observation",
                            "procedure": "Procedure", "medication": "MedicationRequest"}
_STATE = {"active": "", "history": "past ", "any": ""}


@dataclass(frozen=True, slots=True, eq=False)
class CompiledFact:
    fact: Fact
    slot: int  # equal facts share a slot: a call answers each once
    kind: FactKind
    concept_id: str  # "" for score and age facts
    resource: str  # the FHIR resource type it is read from ("" for score and age facts)
    absent: str  # what the chart lacks, in words: "no record in the last 30 days"
    within: timedelta | None
    older_than: timedelta | None
    ended_within: timedelta | None
    # the fact's own fields the evaluation reads, copied out of the pydantic model once
    # (reading a model's attribute costs ten times a slot's)
    status: str
    confirmed: bool
    within_days: int | None
    older_than_days: int | None
    ended_within_days: int | None
    present: bool | None
    above: float | None
    below: float | None
    at_least: float | None
    at_most: float | None
    score: str | None
    band: str | None
    age_below: int | None
    age_at_least: int | None
    limit: str  # an observation's threshold in words ("above 100"; "" if it has none)


@dataclass(frozen=True, slots=True, eq=False)
class FactGroup:
    """Alternatives for one fact (ways of recording it): any one holding is enough."""

    facts: tuple[CompiledFact, ...]
    concepts: frozenset[str]
    charted: bool  # every alternative reads a concept from the chart (no score, no age)
    planned: bool = False  # one of the plan's (lives as long as it): its answers may be kept
    # its place among the plan's distinct lists of facts (equal lists share it: a call answers
    # each once); -1 for one not of the plan's or one that reads a score, which is answered
    # afresh each time (the scores fill their ranges during the call)
    slot: int = -1


@dataclass(frozen=True, slots=True, eq=False)
class CompiledCriterion:
    criterion: Criterion
    when: FactGroup
    and_when: FactGroup | None
    concepts: frozenset[str]
    charted: bool  # as for FactGroup, over `when` and `and_when`


@dataclass(frozen=True, slots=True, eq=False)
class CompiledSection:
    """A score, red flag family or cause: its criteria in the order cards/ writes them (a
    cause's supports, then its against), which of them every call must ask afresh, and what
    its evaluation reads of each criterion, copied out of the content's models once."""

    index: int  # its place among the plan's sections (-1: compiled for one call only)
    criteria: tuple[CompiledCriterion, ...]
    reads: FactGroup  # every fact it reads, its criteria's and its own list's
    always: tuple[int, ...]  # criteria that read a score or the age: asked on every call
    own: FactGroup | None  # a family's escalate_when, a cause's documented
    split: int  # a cause's supports are criteria[:split], its against the rest
    points: tuple[float, ...]  # each criterion's points (scores)
    weights: tuple[float, ...]  # each criterion's weight (causes)
    lowers: tuple[bool, ...]  # a judgement that could only lower the score
    standalone: tuple[bool, ...]  # a red flag that speaks without a presentation
    standalone_with: tuple[FactGroup | None, ...]  # ... or does with one of these facts


def section_of(index: int, criteria: Sequence[CompiledCriterion], own: FactGroup | None,
               split: int, standalone_with: Sequence[FactGroup | None]) -> CompiledSection:
    groups = [] if own is None else [own]
    for c in criteria:
        groups += [c.when] if c.and_when is None else [c.when, c.and_when]
    groups += [g for g in standalone_with if g is not None]
    models = [c.criterion for c in criteria]
    return CompiledSection(
        index, tuple(criteria), group_of(f for g in groups for f in g.facts),
        tuple(i for i, c in enumerate(criteria) if not c.charted), own, split,
        tuple(m.points for m in models), tuple(m.weight for m in models),
        tuple(m.judgement and m.points < 0 for m in models),
        tuple(m.standalone for m in models), tuple(standalone_with))


def parts(section: object) -> tuple[Sequence[Fact] | None, list[Criterion], int]:
    """A section's own list of facts (if any), its criteria, and how many are supports."""
    if isinstance(section, Score):
        return None, list(section.criteria), len(section.criteria)
    if isinstance(section, RedFlagFamily):
        return section.escalate_when, list(section.flags), len(section.flags)
    if isinstance(section, Cause):
        return (section.documented, [*section.supports, *section.against],
                len(section.supports))
    raise TypeError(f"not a score, red flag family or cause: {type(section).__name__}")


def compile_section(section: object) -> CompiledSection:
    """A section that is not one of the plan's, compiled for one call (nothing kept)."""
    own, criteria, split = parts(section)
    compiled = [criterion_of(c, group_of(compile_fact(f) for f in c.when),
                             group_of(compile_fact(f) for f in c.and_when)
                             if c.and_when else None) for c in criteria]
    return section_of(-1, compiled, None if own is None else group_of(
        compile_fact(f) for f in own), split,
        [group_of(compile_fact(f) for f in c.standalone_with) if c.standalone_with else None
         for c in criteria])


def _kind(fact: Fact) -> FactKind:
    if fact.condition is not None:
        return "condition"
    if fact.observation is not None:
        return "observation"
    if fact.procedure is not None:
        return "procedure"
    if fact.medication is not None:
        return "medication"
    if fact.score is not None:
        return "score"
    return "age"


def _absent_words(fact: Fact, kind: FactKind) -> str:
    window = f" in the last {fact.within_days} days" if fact.within_days else ""
    if kind == "condition":
        return f"no {_STATE[fact.status]}record{window}"
    if kind == "observation":
        return f"no result{window}"
    if kind in ("procedure", "medication"):
        return f"no {kind} recorded{window}"
    return ""


def _limit_words(fact: Fact) -> str:
    """The words a not-met result's reason gives for the threshold, as the evaluation
    chooses it: above, else below, else at least, else at most."""
    if fact.above is not None:
        return f"above {fact.above:g}"
    if fact.below is not None:
        return f"below {fact.below:g}"
    if fact.at_least is not None:
        return f"at least {fact.at_least:g}"
    if fact.at_most is not None:
        return f"at most {fact.at_most:g}"
    return ""


def _days(days: int | None) -> timedelta | None:
    return None if days is None else timedelta(days=days)


def compile_fact(fact: Fact, slot: int = -1) -> CompiledFact:
    kind = _kind(fact)
    return CompiledFact(fact, slot, kind, fact.concept_id or "", RESOURCE.get(kind, ""),
                        _absent_words(fact, kind), _days(fact.within_days),
                        _days(fact.older_than_days), _days(fact.ended_within_days),
                        fact.status, fact.confirmed, fact.within_days, fact.older_than_days,
                        fact.ended_within_days, fact.present, fact.above, fact.below,
                        fact.at_least, fact.at_most, fact.score, fact.band, fact.age_below,
                        fact.age_at_least, _limit_words(fact))


def group_of(facts: Iterable[CompiledFact], planned: bool = False, slot: int = -1,
             ) -> FactGroup:
    members = tuple(facts)
    return FactGroup(members, frozenset(f.concept_id for f in members if f.concept_id),
                     all(f.concept_id for f in members), planned, slot)


def criterion_of(criterion: Criterion, when: FactGroup, and_when: FactGroup | None,
                 ) -> CompiledCriterion:
    groups = [when] if and_when is None else [when, and_when]
    return CompiledCriterion(criterion, when, and_when,
                             frozenset(c for g in groups for c in g.concepts),
                             all(g.charted for g in groups))


class Plan:
    """Every fact, list of facts and criterion of one Content, found by the identity of the
    content's own objects (which the plan keeps alive with the content)."""

    def __init__(self, content: Content) -> None:
        self.content = content
        self.facts: dict[int, CompiledFact] = {}
        self.by_slot: list[CompiledFact] = []
        self.slots_of: dict[str, list[int]] = {}  # a concept's facts
        self.groups: dict[int, FactGroup] = {}
        self.by_group_slot: list[FactGroup] = []  # the first of each distinct list of facts
        self._group_slots: dict[tuple[int, ...], int] = {}  # by the slots of its facts
        self.criteria: dict[int, CompiledCriterion] = {}
        self.bands = {score.id: {b.id: (b.min, b.max) for b in score.bands}
                      for score in (content.dvt.score, content.pe_score)}
        # each score, red flag family and cause, by the id of that section
        self.sections: dict[int, CompiledSection] = {}
        self.by_index: list[CompiledSection] = []  # the same, by their index
        # what a charted concept touches: the sections that read it, and the criteria (as
        # section index, position) that do; and the sections a call must evaluate anyhow
        self.sections_of: dict[str, list[int]] = {}
        self.criteria_of: dict[str, list[tuple[int, int]]] = {}
        self.unsettled: list[int] = []  # sections that read a score or the age
        # the presenting concepts, by their place in cards/, and those of the leg itself
        self.presenting = {c: n for n, c in reversed(list(enumerate(
            content.presentation.concepts)))}
        self.leg_concepts = frozenset(content.presentation.dvt_concepts)
        # what each chart state and set of charted concepts leave to a call to evaluate
        # (cds.reasoning.facts._Scope), by those concepts, the resource types read and those
        # that could not be (typed Any: the scope's module imports this one)
        self.scopes: dict[tuple[object, ...], Any] = {}
        # the content's models read on every call, copied out once (see CompiledFact)
        self.families = tuple(content.red_flags.families)
        self.causes = tuple(content.differential.causes)
        self.documented_weight = content.differential.documented_weight
        self.score_bands = {id(score): tuple((b, b.min, b.max) for b in score.bands)
                            for score in (content.dvt.score, content.pe_score)}
        self.ddimer_concepts = tuple(a.concept for a in content.dvt.ddimer.assays)
        self.presentation_window = timedelta(days=content.presentation.within_days)
        # each concept's label and unit, for the reasons an answer gives
        self.words = {cid: (c.label, c.unit or "") for cid, c in content.concepts.items()}
        # the DVT pathway's step for each band and D-dimer state: the first written for them
        self.steps: dict[tuple[str, str], PathwayStep] = {}
        for step in content.dvt.steps:
            for state in ("none", "negative", "positive"):
                if step.when_ddimer in (state, "any"):
                    self.steps.setdefault((step.when_band, state), step)
        self._slots: dict[Fact, int] = {}
        self._keep: list[object] = []  # objects made here whose ids are keys above
        for section in (content.dvt.score, content.pe_score, *content.red_flags.families,
                        *content.differential.causes):
            self._section(section)
        # the families and causes with their compiled sections, in the order cards/ has them
        self.family_sections = tuple((f, self.sections[id(f)]) for f in self.families)
        self.cause_sections = tuple((c, self.sections[id(c)]) for c in self.causes)
        pathway = content.dvt
        self._group(pathway.diagnosed_when)
        suspected = [f.model_copy(update={"confirmed": False})
                     for f in pathway.diagnosed_when if f.confirmed]
        self._keep.append(suspected)
        self._group(suspected)
        for population in pathway.populations:
            self._group(population.when)
        # the DVT pathway's lists, compiled: diagnosed, suspected, and each population's
        self.dvt_score = pathway.score
        self.diagnosed = self._group(pathway.diagnosed_when)
        self.suspected = self._group(suspected)
        self.populations = tuple((p, p.id, self._group(p.when)) for p in pathway.populations)
        # all a charted concept touches, in one lookup: its facts' slots, the sections and
        # the criteria (section index, position) that read it
        self.touches: dict[str, tuple[tuple[int, ...], tuple[int, ...],
                                      tuple[tuple[int, int], ...]]] = {
            concept: (tuple(self.slots_of.get(concept, ())),
                      tuple(self.sections_of.get(concept, ())),
                      tuple(self.criteria_of.get(concept, ())))
            for concept in {*self.slots_of, *self.sections_of, *self.criteria_of}}

    def _fact(self, fact: Fact) -> CompiledFact:
        compiled = self.facts.get(id(fact))
        if compiled is None:
            slot = self._slots.setdefault(fact, len(self._slots))
            compiled = self.facts[id(fact)] = compile_fact(fact, slot)
            if slot == len(self.by_slot):
                self.by_slot.append(compiled)
                if compiled.concept_id:
                    self.slots_of.setdefault(compiled.concept_id, []).append(slot)
        return compiled

    def _group(self, facts: Sequence[Fact]) -> FactGroup:
        group = self.groups.get(id(facts))
        if group is None:
            compiled = [self._fact(f) for f in facts]
            slot = -1
            if all(f.kind != "score" for f in compiled):
                slots = tuple(f.slot for f in compiled)
                slot = self._group_slots.setdefault(slots, len(self._group_slots))
            group = self.groups[id(facts)] = group_of(compiled, True, slot)
            if slot == len(self.by_group_slot):
                self.by_group_slot.append(group)
        return group

    def _criterion(self, criterion: Criterion) -> None:
        when = self._group(criterion.when)
        and_when = self._group(criterion.and_when) if criterion.and_when else None
        self.criteria[id(criterion)] = criterion_of(criterion, when, and_when)

    def _section(self, section: object) -> None:
        own, criteria, split = parts(section)
        index = len(self.sections)
        for c in criteria:
            self._criterion(c)
        compiled = section_of(
            index, [self.criteria[id(c)] for c in criteria],
            None if own is None else self._group(own), split,
            [self._group(c.standalone_with) if c.standalone_with else None for c in criteria])
        self.sections[id(section)] = compiled
        self.by_index.append(compiled)
        if not compiled.reads.charted:
            self.unsettled.append(index)
        for concept in sorted(compiled.reads.concepts):
            self.sections_of.setdefault(concept, []).append(index)
        for position, criterion in enumerate(compiled.criteria):
            for concept in sorted(criterion.concepts):
                self.criteria_of.setdefault(concept, []).append((index, position))


@per_content
def plan_for(content: Content) -> Plan:
    """The content's plan, compiled on first use (one per Content the process loads)."""
    return Plan(content)
