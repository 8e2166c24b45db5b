"""Three-valued evaluation of the facts and criteria written in cards/.

Every answer is met, not met or unknown, with the resources it rests on and, when it is not
met or unknown, the reason in words. Absent data is unknown, never negative: a criterion is
*not met* only when the chart says so (a refuted Condition, a value on the normal side of the
threshold, a finding recorded as absent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar, cast

from cds.content import Content, Criterion, Score, per_content
from cds.reasoning.plan import (
    RESOURCE,
    CompiledCriterion,
    CompiledFact,
    CompiledSection,
    FactGroup,
    Plan,
    compile_section,
    plan_for,
)
from cds.record import Event, Measurement, PatientRecord

# how far in the future a record may be dated and still count as now (clock skew)
FUTURE_SLACK = timedelta(hours=12)
_WANTED = {"active": {"active"}, "history": {"history"}, "any": {"active", "history"}}
_STATE = {"active": "", "history": "past ", "any": ""}
S = TypeVar("S")
R = TypeVar("R")


class Truth(Enum):
    MET = "met"
    NOT_MET = "not met"
    UNKNOWN = "unknown"


# module constants (imported by the other rule families too): on Python 3.11 every
# `Truth.MET` is a call of EnumType.__getattr__
MET, NOT_MET, UNKNOWN = Truth.MET, Truth.NOT_MET, Truth.UNKNOWN

# The answers and results below are made many times a call, and a frozen dataclass is slow
# to make: they are plain slotted dataclasses (hashable, as before). Never change one after it
# is made, nor its lists: the answers about unrecorded concepts are shared between calls, and
# so are the scores, red flag families and causes of a chart that records nothing they read.


@dataclass(slots=True, unsafe_hash=True)
class Evidence:
    reference: str
    text: str


@dataclass(slots=True, unsafe_hash=True)
class Answer:
    truth: Truth
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""
    measured: bool = False  # answered by a recent measurement, not by a missing record

    @property
    def met(self) -> bool:
        return self.truth is MET


@dataclass(slots=True, unsafe_hash=True)
class CriterionResult:
    criterion: Criterion
    answer: Answer

    @property
    def truth(self) -> Truth:
        return self.answer.truth


def any_of(answers: Sequence[Answer]) -> Answer:
    """Met if any alternative is met. The alternatives of one criterion are ways of recording
    the same fact, so a recent measurement on the normal side (heart rate 72 today) answers
    it even when a coded diagnosis (tachycardia) is simply not on the chart."""
    if len(answers) == 1:
        only = answers[0]
        truth = only.truth
        if not ((truth is UNKNOWN and only.evidence) or (truth is MET and only.reason)):
            return only  # one way of recording the fact: its answer as it is
    # one pass: the met answers, the measured not-met ones, and whether all are not met
    met: list[Answer] = []
    measured: list[Answer] = []
    unknown: list[str] = []  # the unknown answers' reasons
    all_not_met = bool(answers)
    for a in answers:
        truth = a.truth
        if truth is NOT_MET:
            if a.measured:
                measured.append(a)
        else:
            all_not_met = False
            if truth is MET:
                met.append(a)
            elif a.reason:
                unknown.append(a.reason)
    if met:
        if len(met) == 1:
            first = met[0]
            if not (first.reason or first.measured):
                return first  # the answer below would equal it: no need to make one
            return Answer(MET, first.evidence)
        return Answer(MET, tuple(e for a in met for e in a.evidence))
    if measured:
        if len(measured) == 1:
            return measured[0]  # equal to the answer below (a measured answer is not met)
        return Answer(NOT_MET, tuple(e for a in measured for e in a.evidence),
                      "; ".join(a.reason for a in measured if a.reason), measured=True)
    if all_not_met:
        return Answer(NOT_MET, tuple(e for a in answers for e in a.evidence),
                      "; ".join(dict.fromkeys(a.reason for a in answers if a.reason)))
    return Answer(UNKNOWN, (), "; ".join(dict.fromkeys(unknown)))


def all_of(answers: Sequence[Answer]) -> Answer:
    not_met = [a for a in answers if a.truth is NOT_MET]
    if not_met:
        return Answer(NOT_MET, tuple(e for a in not_met for e in a.evidence),
                      "; ".join(a.reason for a in not_met if a.reason))
    if all(a.truth is MET for a in answers):
        return Answer(MET, tuple(e for a in answers for e in a.evidence))
    unknown = [a.reason for a in answers if a.truth is UNKNOWN and a.reason]
    evidence = tuple(e for a in answers if a.truth is MET for e in a.evidence)
    return Answer(UNKNOWN, evidence, "; ".join(dict.fromkeys(unknown)))


class _AbsentChart:
    """The answers about concepts a chart does not record at all: they depend only on the
    content and on which resource types could be read (`state`), and most facts of most charts
    end there, so each is worked out once per such state, not on every call."""

    def __init__(self, content: Content, state: tuple[tuple[str | None, bool], ...]) -> None:
        self.content = content
        self.state = dict(zip(RESOURCE.values(), state, strict=True))
        self._facts: dict[int, Answer] = {}  # by fact slot
        self._groups: dict[int, Answer] = {}  # by id of the plan's FactGroup
        self._criteria: dict[int, CriterionResult] = {}  # by id of the plan's criterion
        # by index of the score, family or cause: its result (typed Any: a ScoreResult,
        # RedFlagResult or CauseResult, which import this module)
        self.sections: dict[int, Any] = {}
        # by section index: its criteria's answers (None for those about a score or the age)
        self._results: dict[int, list[CriterionResult | None]] = {}
        self._answers: list[Answer | None] | None = None

    def answers(self, plan: Plan) -> list[Answer | None]:
        """A fresh list of every fact's answer, by slot, for a chart that records none of the
        concepts (None for score and age facts, which do not depend on it)."""
        if self._answers is None:
            self._answers = [self.fact(f) if f.concept_id else None for f in plan.by_slot]
        return list(self._answers)

    def fact(self, fact: CompiledFact) -> Answer:
        answer = self._facts.get(fact.slot)
        if answer is None:
            answer = self._not_documented(fact)
            if fact.slot >= 0:
                self._facts[fact.slot] = answer
        return answer

    def group(self, group: FactGroup) -> Answer:
        answer = self._groups.get(id(group))
        if answer is None:
            answer = self._groups[id(group)] = any_of([self.fact(f) for f in group.facts])
        return answer

    def criterion(self, compiled: CompiledCriterion) -> CriterionResult:
        result = self._criteria.get(id(compiled))
        if result is None:
            answer = self.group(compiled.when)
            if compiled.and_when is not None:
                answer = all_of([answer, self.group(compiled.and_when)])
            result = self._criteria[id(compiled)] = CriterionResult(compiled.criterion, answer)
        return result

    def results(self, section: CompiledSection) -> list[CriterionResult | None]:
        """A fresh list of the section's criteria answered for a chart that records none of
        their concepts (None for the criteria about a score or the age)."""
        results = self._results.get(section.index)
        if results is None:
            results = self._results[section.index] = [
                self.criterion(c) if c.charted else None for c in section.criteria]
        return list(results)

    def _not_documented(self, fact: CompiledFact) -> Answer:
        concept = self.content.concepts[fact.concept_id]
        if not (concept.codings or concept.valuesets or concept.qualified):
            return Answer(UNKNOWN, (), f"{concept.label}: no standard code, so never "
                                               "recorded in a computable way; ask or examine")
        missing, read = self.state[fact.resource]
        if missing is not None:
            return Answer(UNKNOWN, (), f"{fact.resource} resources could not be read "
                                               f"({missing})")
        if not read:
            return Answer(UNKNOWN, (), f"{fact.resource} resources were not available")
        return Answer(UNKNOWN, (), f"{concept.label}: {fact.absent}")


class _Scope:
    """For one chart state and one set of charted concepts: every fact's answer as far as the
    state settles it (None where the chart's concepts leave it to the call), and, by section
    index, the positions of the criteria each call evaluates afresh (those that read a charted
    concept, a score or the age), or None for a section that reads nothing the chart records
    and no score or age (its result is the state's, kept). The other criteria of an evaluated
    section are the state's unknown answers: a chart that records none of a criterion's
    concepts leaves it unknown."""

    __slots__ = ("absent", "answers", "base", "fresh", "groups")

    def __init__(self, plan: Plan, absent: _AbsentChart, charted: frozenset[str]) -> None:
        self.absent = absent
        answers = absent.answers(plan)
        fresh: list[set[int] | None] = [None] * len(plan.by_index)
        for index in plan.unsettled:
            fresh[index] = set(plan.by_index[index].always)
        for concept in charted:
            touch = plan.touches.get(concept)
            if touch is None:  # a concept no rule reads
                continue
            slots, sections, criteria = touch
            for slot in slots:
                answers[slot] = None
            for index in sections:
                if fresh[index] is None:
                    fresh[index] = set(plan.by_index[index].always)
            for index, position in criteria:
                cast(set[int], fresh[index]).add(position)
        self.answers = answers
        # each distinct list of facts' answer, by its slot, when the state settles it (a
        # list of charted concepts the chart records none of); None: left to the call
        self.groups: list[Answer | None] = [
            absent.group(g) if g.charted and g.concepts.isdisjoint(charted) else None
            for g in plan.by_group_slot]
        self.fresh: tuple[tuple[int, ...] | None, ...] = tuple(
            None if positions is None else tuple(sorted(positions)) for positions in fresh)
        # by section index: the state's answers to its criteria (None for those about a
        # score or the age), which an evaluated section's fresh answers replace in a copy
        self.base = tuple(tuple(absent.results(section)) for section in plan.by_index)


_KINDS = tuple(RESOURCE.values())
# a score fact's answer when the score's range is inside or outside the band (shared: never
# change one), by score and band for the latter
_IN_BAND = Answer(MET, (), "")
_OUTSIDE: dict[tuple[str, str | None], Answer] = {}


def _scope_of(plan: Plan, record: PatientRecord, charted: frozenset[str]) -> _Scope:
    """The chart's scope, found by what it records, what was read and what could not be
    (a key that is quicker to make than the state itself; equal states share their answers)."""
    missing = record.missing
    key = (charted, frozenset(record.read), tuple(missing.items()) if missing else ())
    scope: _Scope | None = plan.scopes.get(key)
    if scope is None:
        if len(plan.scopes) >= 4096:  # sets come from cards/'s concepts, but stay bounded
            plan.scopes.clear()
        scope = plan.scopes[key] = _Scope(plan, _absent_chart(plan.content, record), charted)
    return scope


def _absent_chart(content: Content, record: PatientRecord) -> _AbsentChart:
    # the state: why each resource type could not be read (if so), and whether it was
    return _absent_in_state(content, tuple(zip(map(record.missing.get, _KINDS),
                                               map(record.read.__contains__, _KINDS),
                                               strict=True)))


@per_content
def _absent_in_state(content: Content, state: tuple[tuple[str | None, bool], ...],
                     ) -> _AbsentChart:
    return _AbsentChart(content, state)


def _charted(record: PatientRecord) -> frozenset[str]:
    """The concepts the chart records anything of (findings, results, procedures, drugs)."""
    found, measured, done, given = (record.findings, record.measurements, record.procedures,
                                    record.medications)
    if all(found.values()) and all(measured.values()) and all(done.values()) and all(
            given.values()):  # no concept with an empty list (the usual chart): all of them
        return frozenset(found).union(measured, done, given)
    return frozenset({concept for table in (found, measured, done, given)
                      for concept, items in table.items() if items})


class FactEvaluator:
    """Answers facts about one PatientRecord, each distinct fact once; `score_ranges` feeds
    `score` facts (which are answered afresh each time: the scores fill it during the call)."""

    def __init__(self, content: Content, record: PatientRecord) -> None:
        self.content = content
        self.record = record
        self.score_ranges: dict[str, tuple[float, float]] = {}
        self._plan = self.plan = plan = plan_for(content)
        # the concepts the chart records anything of
        self.charted = self._charted = charted = _charted(record)
        scope = _scope_of(plan, record, charted)
        self._absent = scope.absent
        # each fact's answer once known, by slot: those about unrecorded concepts from the start
        self._memo = list(scope.answers)
        # each distinct list of facts' answer once known, by slot (see FactGroup.slot)
        self._groups = list(scope.groups)
        # by section index: the positions of the criteria evaluated afresh (see _Scope)
        self._fresh = scope.fresh
        self._base = scope.base
        self._upper = record.as_of + FUTURE_SLACK
        self._aged: tuple[int | None, tuple[Evidence, ...]] | None = None

    # ------------------------------------------------------------ public

    def evaluated(self, section: CompiledSection,
                  ) -> tuple[list[CriterionResult], Sequence[int]]:
        """The result of each of a section's criteria, in order, and the positions (ascending)
        of those evaluated afresh: the criteria the chart's concepts touch and those about a score
        or the age. The others come from the state's list, and are unknown.

        Every section a call evaluates comes through here, and a criterion is evaluated
        only here, in the loop (a Python call per criterion would cost more than the
        evaluation of most of them): one of its `when` facts holds, and (if given) one of its
        `and_when` too."""
        every = section.criteria
        positions: Sequence[int]
        if section.index < 0:  # not one of the plan's: nothing kept, every criterion afresh
            results: list[CriterionResult] = [None] * len(every)  # type: ignore[list-item]
            positions = range(len(every))
        else:
            # the state's answers, with None for the criteria about a score or the age,
            # which are always among the positions evaluated below
            results = list(self._base[section.index])  # type: ignore[arg-type]
            fresh = self._fresh[section.index]
            # None: evaluated only because a clinician answered a score
            positions = section.always if fresh is None else fresh
        group = self._any
        for position in positions:
            compiled = every[position]
            answer = group(compiled.when)
            if compiled.and_when is not None:
                answer = all_of([answer, group(compiled.and_when)])
            results[position] = CriterionResult(compiled.criterion, answer)
        return results, positions

    def score_results(self, score: Score, section: CompiledSection) -> list[CriterionResult]:
        """A score's criteria: the coded chart first; what it leaves unknown, a clinician's
        recent answer to the score's questionnaire (cds.smart.answers)."""
        results = self.evaluated(section)[0]
        if self.record.answers:
            return [self._answered(score.id, r) if r.answer.truth is UNKNOWN else r
                    for r in results]
        return results

    def _answered(self, score_id: str, result: CriterionResult) -> CriterionResult:
        """An unknown criterion, answered by the clinician if they did."""
        criterion = result.criterion
        given = self.record.answers.get(f"{score_id}/{criterion.id}")
        if given is None:
            return result
        evidence = (Evidence(given.reference, given.text),)
        if given.value:
            return CriterionResult(criterion, Answer(MET, evidence))
        return CriterionResult(criterion, Answer(NOT_MET, evidence, given.text))

    def section(self, section: S, evaluate: Callable[[S, CompiledSection, FactEvaluator], R],
                ) -> R:
        """`evaluate(section, compiled, self)` for a score, red flag family or cause. When the
        chart records nothing the section reads (and no clinician answered a score's
        questions), the result is the same for every chart read in the same state: it is
        evaluated once per state and kept, and every such call gets that same result (never
        change one: see the note above `Evidence`)."""
        compiled = self._plan.sections.get(id(section))
        if compiled is None:
            return evaluate(section, compile_section(section), self)
        return self.each(((section, compiled),), evaluate)[0]

    def each(self, sections: Sequence[tuple[S, CompiledSection]],
             evaluate: Callable[[S, CompiledSection, FactEvaluator], R]) -> list[R]:
        """`section(s, evaluate)` for each of the plan's sections given with their compiled
        form (the red flag families, the causes), in order: the one place a section's result
        is kept per state or evaluated afresh."""
        fresh = self._fresh
        kept: dict[int, R] = self._absent.sections
        answered = bool(self.record.answers)
        results: list[R] = []
        for section, compiled in sections:
            index = compiled.index
            if fresh[index] is not None or answered:
                result = evaluate(section, compiled, self)
            else:
                result = kept.get(index)  # type: ignore[assignment]
                if result is None:
                    result = kept[index] = evaluate(section, compiled, self)
            results.append(result)
        return results

    # ------------------------------------------------------------ kinds

    def _any(self, group: FactGroup) -> Answer:
        slot = group.slot
        if slot >= 0:
            known = self._groups[slot]
            if known is not None:  # the state's, or asked before in this call
                return known
        facts = group.facts
        if len(facts) == 1:  # most lists: one way of recording the fact (see `any_of`)
            answer = self._answer(facts[0])
            truth = answer.truth
            if (truth is UNKNOWN and answer.evidence) or (truth is MET and answer.reason):
                answer = any_of((answer,))
        else:
            # most alternatives name concepts the chart does not record: their answers are
            # the state's, read here rather than through a call of `_answer` each
            memo = self._memo
            answers: list[Answer] = []
            for fact in facts:
                known = memo[fact.slot] if fact.slot >= 0 else None
                answers.append(self._answer(fact) if known is None else known)
            answer = any_of(answers)
        if slot >= 0:
            self._groups[slot] = answer
        return answer

    group = _any  # met if any of the group's facts is (see `any_of`): the public name

    def _answer(self, fact: CompiledFact) -> Answer:
        slot = fact.slot
        if slot >= 0:
            known = self._memo[slot]
            if known is not None:
                return known
        kind = fact.kind
        if kind == "score":  # not kept: the score's range may be filled in later in the call
            return self._score(fact)
        if kind == "condition":
            answer = self._condition(fact)
        elif kind == "observation":
            answer = self._observation(fact)
        elif kind == "procedure":
            answer = self._event(fact, self.record.procedures)
        elif kind == "medication":
            answer = self._event(fact, self.record.medications)
        else:
            answer = self._age(fact)
        if slot >= 0:
            self._memo[slot] = answer
        return answer

    def _in_window(self, when: datetime | None, fact: CompiledFact, undated_counts: bool,
                   ) -> bool:
        """Undated active Conditions count (the chart says they hold now); undated events and
        results count only when the fact has no time window."""
        if when is None:
            return undated_counts or fact.within is None
        return (fact.within is None or when >= self.record.as_of - fact.within) and (
            when <= self._upper)

    def _condition(self, compiled: CompiledFact) -> Answer:
        """One pass over the concept's findings (the window bounds worked out once): those
        that hold, those refuted, and whether any has the wanted status at all. The pass
        gathers their evidence as it goes (no second pass, no generator per answer)."""
        fact = compiled  # its fields, copied out of the model (see CompiledFact)
        concept_id = compiled.concept_id
        wanted = _WANTED[fact.status]
        confirmed = fact.confirmed  # a provisional or differential diagnosis is a suspicion
        as_of, upper = self.record.as_of, self._upper
        lower = None if compiled.within is None else as_of - compiled.within
        oldest = None if compiled.older_than is None else as_of - compiled.older_than
        ended_from = None if compiled.ended_within is None else as_of - compiled.ended_within
        positive: list[Evidence] = []
        refuted: list[Evidence] = []
        older = False
        for f in self.record.findings.get(concept_id, ()):
            status = f.status
            if confirmed and f.tentative and status != "refuted":
                continue
            wanted_status = status in wanted
            if not wanted_status and status != "refuted":
                continue
            older = older or wanted_status
            when = f.when
            # undated active Conditions count: the chart says they hold now
            if when is not None and ((lower is not None and when < lower) or when > upper):
                continue
            if oldest is not None and (when is None or when > oldest):
                continue  # older_than_days: a dated record at least that old
            if not wanted_status:
                refuted.append(Evidence(f.reference, f.text))
            elif ended_from is None or (
                    f.ended is not None and ended_from <= f.ended <= upper):
                # ended_within_days: ended in that window, not later
                positive.append(Evidence(f.reference, f.text))
        if positive:
            return Answer(MET, tuple(positive))
        if refuted:
            return Answer(NOT_MET, tuple(refuted), "recorded as absent or refuted")
        if not older:
            return self._absent.fact(compiled)
        label = self._plan.words[concept_id][0]
        if fact.ended_within_days is not None:
            return Answer(UNKNOWN, (), f"{label}: did not end in the last "
                                        f"{fact.ended_within_days} days")
        if fact.older_than_days is not None:
            return Answer(UNKNOWN, (), f"{label}: recorded within {fact.older_than_days} "
                                        "days (current, not history)")
        return Answer(UNKNOWN, (), f"{label}: only {_STATE[fact.status]}records older than "
                                    f"{fact.within_days} days")

    def _observation(self, compiled: CompiledFact) -> Answer:
        fact = compiled  # its fields, copied out of the model (see CompiledFact)
        present = fact.present
        lower = None if compiled.within is None else self.record.as_of - compiled.within
        upper = self._upper
        items: list[Measurement] = []
        for m in self.record.measurements.get(compiled.concept_id, ()):
            if (m.value if present is None else m.present) is None:
                continue
            when = m.when
            if when is None:  # undated results count only when the fact has no window
                if lower is None:
                    items.append(m)
            elif (lower is None or when >= lower) and when <= upper:
                items.append(m)
        if not items:
            return self._absent.fact(compiled)
        latest = items[0] if len(items) == 1 else self._newest(items)
        evidence = (Evidence(latest.reference, latest.text),)
        if present is not None:
            if latest.present == present:
                return Answer(MET, evidence)
            label = self._plan.words[compiled.concept_id][0]
            return Answer(NOT_MET, evidence, f"{label} recorded as "
                                              f"{'present' if latest.present else 'absent'}")
        value = latest.value if latest.value is not None else 0.0
        if fact.above is not None:
            holds = value > fact.above
        elif fact.below is not None:
            holds = value < fact.below
        elif fact.at_least is not None:
            holds = value >= fact.at_least
        else:
            holds = value <= (fact.at_most or 0.0)
        if holds:
            return Answer(MET, evidence)
        limit = fact.limit or f"at most {fact.at_most:g}"  # (no threshold: as before)
        label, unit = self._plan.words[compiled.concept_id]
        return Answer(NOT_MET, evidence, f"{label} {value:g} {unit} is not {limit}",
                      measured=True)

    def _newest(self, items: list[Measurement]) -> Measurement:
        """The newest; of results equally new, the first the chart lists."""
        undated = datetime.min.replace(tzinfo=self.record.as_of.tzinfo)
        return max(items, key=lambda m: m.when or undated)

    def _event(self, fact: CompiledFact, table: dict[str, list[Event]]) -> Answer:
        events = [e for e in table.get(fact.concept_id, [])
                  if self._in_window(e.when, fact, False)]
        if events:
            return Answer(MET, tuple(Evidence(e.reference, e.text) for e in events))
        return self._absent.fact(fact)

    def _score(self, compiled: CompiledFact) -> Answer:
        fact = compiled  # its fields, copied out of the model (see CompiledFact)
        score_id = fact.score or ""
        if score_id not in self.score_ranges:
            return Answer(UNKNOWN, (), f"{score_id} not computed")
        low, high = self.score_ranges[score_id]
        band_min, band_max = self._plan.bands[score_id][fact.band or ""]
        inside = (band_min is None or low >= band_min) and (band_max is None or high <= band_max)
        outside = (band_min is not None and high < band_min) or (
            band_max is not None and low > band_max)
        if inside:
            return _IN_BAND
        if outside:
            answer = _OUTSIDE.get((score_id, fact.band))
            if answer is None:  # the same for every call: made once per score and band
                answer = _OUTSIDE[score_id, fact.band] = Answer(
                    NOT_MET, (), f"{score_id} is not {fact.band}")
            return answer
        return Answer(UNKNOWN, (), f"{score_id} could be {fact.band} ({low:g} to {high:g})")

    def _age(self, compiled: CompiledFact) -> Answer:
        fact = compiled  # its fields, copied out of the model (see CompiledFact)
        if self._aged is None:  # worked out once a call, whatever the age facts ask
            age = self.record.age
            reference = self.record.patient_reference or f"Patient/{self.record.patient_id}"
            self._aged = (age, () if age is None else (Evidence(reference, f"age {age}"),))
        age, evidence = self._aged
        if age is None:
            return Answer(UNKNOWN, (), "age unknown (no Patient.birthDate)")
        if fact.age_below is not None:
            holds = age < fact.age_below
        else:
            holds = age >= (fact.age_at_least or 0)
        if holds:
            return Answer(MET, evidence)
        return Answer(NOT_MET, evidence, f"age {age}")


def evidence_of(results: Iterable[CriterionResult]) -> list[Evidence]:
    """The cited resources of the met results, each once, in order."""
    seen: dict[str, Evidence] = {}
    for result in results:
        if result.truth is MET:
            for item in result.answer.evidence:
                seen.setdefault(item.reference + item.text, item)
    return list(seen.values())
