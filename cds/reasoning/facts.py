"""Three-valued evaluation of the facts and criteria written in cards/.

Every answer is met, not met or unknown, with the resources it rests on and, when it is not
met or unknown, the reason in words. Absent data is unknown, never negative: a criterion is
*not met* only when the chart says so (a refuted Condition, a value on the normal side of the
threshold, a finding recorded as absent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from cds.content import Content, Criterion, Fact
from cds.record import Event, Finding, Measurement, PatientRecord

# how far in the future a record may be dated and still count as now (clock skew)
FUTURE_SLACK = timedelta(hours=12)
_WANTED = {"active": {"active"}, "history": {"history"}, "any": {"active", "history"}}
_STATE = {"active": "", "history": "past ", "any": ""}
# "not documented" answers depend only on the content and on which kinds could be read, and
# most facts of most charts end there: computed once per distinct case, not on every call
_NOT_DOCUMENTED: dict[tuple[object, ...], tuple[Content, Answer]] = {}


class Truth(Enum):
    MET = "met"
    NOT_MET = "not met"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Evidence:
    reference: str
    text: str


@dataclass(frozen=True)
class Answer:
    truth: Truth
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""
    measured: bool = False  # answered by a recent measurement, not by a missing record

    @property
    def met(self) -> bool:
        return self.truth is Truth.MET


@dataclass(frozen=True)
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
    if len(answers) == 1 and not (answers[0].truth is Truth.UNKNOWN and answers[0].evidence) \
            and not (answers[0].truth is Truth.MET and answers[0].reason):
        return answers[0]  # one way of recording the fact: its answer as it is
    met = [a for a in answers if a.truth is Truth.MET]
    if met:
        return Answer(Truth.MET, tuple(e for a in met for e in a.evidence))
    measured = [a for a in answers if a.truth is Truth.NOT_MET and a.measured]
    if measured:
        return Answer(Truth.NOT_MET, tuple(e for a in measured for e in a.evidence),
                      "; ".join(a.reason for a in measured if a.reason), measured=True)
    if answers and all(a.truth is Truth.NOT_MET for a in answers):
        return Answer(Truth.NOT_MET, tuple(e for a in answers for e in a.evidence),
                      "; ".join(dict.fromkeys(a.reason for a in answers if a.reason)))
    unknown = [a.reason for a in answers if a.truth is Truth.UNKNOWN and a.reason]
    return Answer(Truth.UNKNOWN, (), "; ".join(dict.fromkeys(unknown)))


def all_of(answers: Sequence[Answer]) -> Answer:
    not_met = [a for a in answers if a.truth is Truth.NOT_MET]
    if not_met:
        return Answer(Truth.NOT_MET, tuple(e for a in not_met for e in a.evidence),
                      "; ".join(a.reason for a in not_met if a.reason))
    if all(a.truth is Truth.MET for a in answers):
        return Answer(Truth.MET, tuple(e for a in answers for e in a.evidence))
    unknown = [a.reason for a in answers if a.truth is Truth.UNKNOWN and a.reason]
    evidence = tuple(e for a in answers if a.truth is Truth.MET for e in a.evidence)
    return Answer(Truth.UNKNOWN, evidence, "; ".join(dict.fromkeys(unknown)))


class FactEvaluator:
    """Answers facts about one PatientRecord; `score_bands` feeds `score` facts."""

    def __init__(self, content: Content, record: PatientRecord) -> None:
        self.content = content
        self.record = record
        self.score_ranges: dict[str, tuple[float, float]] = {}
        self._bands = {
            score.id: {b.id: (b.min, b.max) for b in score.bands}
            for score in (content.dvt.score, content.pe_score)
        }

    # ------------------------------------------------------------ public

    def criterion(self, criterion: Criterion) -> CriterionResult:
        answer = any_of([self.fact(f) for f in criterion.when])
        if criterion.and_when:
            answer = all_of([answer, any_of([self.fact(f) for f in criterion.and_when])])
        return CriterionResult(criterion, answer)

    def score_criterion(self, score_id: str, criterion: Criterion) -> CriterionResult:
        """A score's criterion: the coded chart first; what it leaves unknown, a clinician's
        recent answer to the score's questionnaire (cds.smart.answers)."""
        result = self.criterion(criterion)
        given = self.record.answers.get(f"{score_id}/{criterion.id}")
        if result.truth is not Truth.UNKNOWN or given is None:
            return result
        evidence = (Evidence(given.reference, given.text),)
        if given.value:
            return CriterionResult(criterion, Answer(Truth.MET, evidence))
        return CriterionResult(criterion, Answer(Truth.NOT_MET, evidence, given.text))

    def fact(self, fact: Fact) -> Answer:
        if fact.condition is not None:
            return self._condition(fact)
        if fact.observation is not None:
            return self._observation(fact)
        if fact.procedure is not None:
            return self._event(fact, self.record.procedures, "Procedure", "procedure")
        if fact.medication is not None:
            return self._event(fact, self.record.medications, "MedicationRequest", "medication")
        if fact.score is not None:
            return self._score(fact)
        return self._age(fact)

    # ------------------------------------------------------------ kinds

    def _window(self, fact: Fact) -> tuple[datetime | None, datetime]:
        upper = self.record.as_of + FUTURE_SLACK
        if fact.within_days is None:
            return None, upper
        return self.record.as_of - timedelta(days=fact.within_days), upper

    def _in_window(self, when: datetime | None, fact: Fact, undated_counts: bool) -> bool:
        """Undated active Conditions count (the chart says they hold now); undated events and
        results count only when the fact has no time window."""
        lower, upper = self._window(fact)
        if when is None:
            return undated_counts or lower is None
        return (lower is None or when >= lower) and when <= upper

    def _old_enough(self, when: datetime | None, fact: Fact) -> bool:
        """For `older_than_days`: a dated record at least that old (undated ones are not)."""
        if fact.older_than_days is None:
            return True
        return when is not None and when <= self.record.as_of - timedelta(
            days=fact.older_than_days)

    def _ended_recently(self, finding: Finding, fact: Fact) -> bool:
        """For `ended_within_days`: ended (abatementDateTime) in that window, not later
        than now."""
        if fact.ended_within_days is None:
            return True
        ended = finding.ended
        return ended is not None and (
            self.record.as_of - timedelta(days=fact.ended_within_days) <= ended
            <= self.record.as_of + FUTURE_SLACK)

    def _not_documented(self, concept_id: str, kind: str, what: str) -> Answer:
        key = (id(self.content), concept_id, kind, what, self.record.missing.get(kind),
               kind in self.record.read)
        cached = _NOT_DOCUMENTED.get(key)
        if cached is not None and cached[0] is self.content:
            return cached[1]
        answer = self._not_documented_answer(concept_id, kind, what)
        if len(_NOT_DOCUMENTED) > 10_000:  # missing-data reasons vary: stay bounded
            _NOT_DOCUMENTED.clear()
        _NOT_DOCUMENTED[key] = (self.content, answer)
        return answer

    def _not_documented_answer(self, concept_id: str, kind: str, what: str) -> Answer:
        concept = self.content.concepts[concept_id]
        if not (concept.codings or concept.valuesets or concept.qualified):
            return Answer(Truth.UNKNOWN, (), f"{concept.label}: no standard code, so never "
                                               "recorded in a computable way; ask or examine")
        if kind in self.record.missing:
            return Answer(Truth.UNKNOWN, (), f"{kind} resources could not be read "
                                               f"({self.record.missing[kind]})")
        if kind not in self.record.read:
            return Answer(Truth.UNKNOWN, (), f"{kind} resources were not available")
        return Answer(Truth.UNKNOWN, (), f"{concept.label}: {what}")

    def _condition(self, fact: Fact) -> Answer:
        concept_id = fact.condition or ""
        findings: list[Finding] = self.record.findings.get(concept_id, [])
        if not findings:
            window = f" in the last {fact.within_days} days" if fact.within_days else ""
            return self._not_documented(concept_id, "Condition",
                                        f"no {_STATE[fact.status]}record{window}")
        wanted = _WANTED
        if fact.confirmed:  # a provisional or differential diagnosis is a suspicion
            findings = [f for f in findings if not f.tentative or f.status == "refuted"]
        positive = [
            f for f in findings
            if f.status in wanted[fact.status] and self._in_window(f.when, fact, True)
            and self._old_enough(f.when, fact) and self._ended_recently(f, fact)
        ]
        if positive:
            return Answer(Truth.MET, tuple(Evidence(f.reference, f.text) for f in positive))
        refuted = [f for f in findings if f.status == "refuted" and self._in_window(
            f.when, fact, True) and self._old_enough(f.when, fact)]
        if refuted:
            return Answer(Truth.NOT_MET, tuple(Evidence(f.reference, f.text) for f in refuted),
                          "recorded as absent or refuted")
        window = f" in the last {fact.within_days} days" if fact.within_days else ""
        state = _STATE[fact.status]
        older = [f for f in findings if f.status in wanted[fact.status]]
        if older and fact.ended_within_days is not None:
            return Answer(Truth.UNKNOWN, (), f"{self.content.concepts[concept_id].label}: "
                                               "did not end in the last "
                                               f"{fact.ended_within_days} days")
        if older and fact.older_than_days is not None:
            return Answer(Truth.UNKNOWN, (), f"{self.content.concepts[concept_id].label}: "
                                               f"recorded within {fact.older_than_days} days "
                                               "(current, not history)")
        if older:
            return Answer(Truth.UNKNOWN, (), f"{self.content.concepts[concept_id].label}: only "
                                               f"{state}records older than {fact.within_days} "
                                               "days")
        return self._not_documented(concept_id, "Condition", f"no {state}record{window}")

    def _observation(self, fact: Fact) -> Answer:
        concept_id = fact.observation or ""
        concept = self.content.concepts[concept_id]
        items: list[Measurement] = sorted(
            (m for m in self.record.measurements.get(concept_id, [])
             if self._in_window(m.when, fact, False)),
            key=lambda m: m.when or datetime.min.replace(tzinfo=self.record.as_of.tzinfo),
            reverse=True,
        )
        if fact.present is not None:
            items = [m for m in items if m.present is not None]
        else:
            items = [m for m in items if m.value is not None]
        if not items:
            window = f" in the last {fact.within_days} days" if fact.within_days else ""
            return self._not_documented(concept_id, "Observation", f"no result{window}")
        latest = items[0]
        evidence = (Evidence(latest.reference, latest.text),)
        if fact.present is not None:
            holds = latest.present == fact.present
        else:
            value = latest.value if latest.value is not None else 0.0
            if fact.above is not None:
                holds, limit = value > fact.above, f"above {fact.above:g}"
            elif fact.below is not None:
                holds, limit = value < fact.below, f"below {fact.below:g}"
            elif fact.at_least is not None:
                holds, limit = value >= fact.at_least, f"at least {fact.at_least:g}"
            else:
                holds, limit = value <= (fact.at_most or 0.0), f"at most {fact.at_most:g}"
            if not holds:
                return Answer(Truth.NOT_MET, evidence,
                              f"{concept.label} {value:g} {concept.unit or ''} is not {limit}",
                              measured=True)
        if holds:
            return Answer(Truth.MET, evidence)
        return Answer(Truth.NOT_MET, evidence, f"{concept.label} recorded as "
                                                f"{'present' if latest.present else 'absent'}")

    def _event(self, fact: Fact, table: dict[str, list[Event]], kind: str, noun: str) -> Answer:
        concept_id = fact.concept_id or ""
        events = [e for e in table.get(concept_id, []) if self._in_window(e.when, fact, False)]
        if events:
            return Answer(Truth.MET, tuple(Evidence(e.reference, e.text) for e in events))
        window = f" in the last {fact.within_days} days" if fact.within_days else ""
        return self._not_documented(concept_id, kind, f"no {noun} recorded{window}")

    def _score(self, fact: Fact) -> Answer:
        score_id = fact.score or ""
        if score_id not in self.score_ranges:
            return Answer(Truth.UNKNOWN, (), f"{score_id} not computed")
        low, high = self.score_ranges[score_id]
        band_min, band_max = self._bands[score_id][fact.band or ""]
        inside = (band_min is None or low >= band_min) and (band_max is None or high <= band_max)
        outside = (band_min is not None and high < band_min) or (
            band_max is not None and low > band_max)
        if inside:
            return Answer(Truth.MET, (), "")
        if outside:
            return Answer(Truth.NOT_MET, (), f"{score_id} is not {fact.band}")
        return Answer(Truth.UNKNOWN, (), f"{score_id} could be {fact.band} ({low:g} to {high:g})")

    def _age(self, fact: Fact) -> Answer:
        age = self.record.age
        if age is None:
            return Answer(Truth.UNKNOWN, (), "age unknown (no Patient.birthDate)")
        reference = self.record.patient_reference or f"Patient/{self.record.patient_id}"
        evidence = (Evidence(reference, f"age {age}"),)
        if fact.age_below is not None:
            holds = age < fact.age_below
        else:
            holds = age >= (fact.age_at_least or 0)
        if holds:
            return Answer(Truth.MET, evidence)
        return Answer(Truth.NOT_MET, evidence, f"age {age}")


def evidence_of(results: Iterable[CriterionResult]) -> list[Evidence]:
    """The cited resources of the met results, each once, in order."""
    seen: dict[str, Evidence] = {}
    for result in results:
        if result.truth is Truth.MET:
            for item in result.answer.evidence:
                seen.setdefault(item.reference + item.text, item)
    return list(seen.values())
