"""The DVT pathway: two-level Wells score, the latest recent D-dimer, and the next step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from cds.content import Content, DdimerAssay, PathwayStep, Population
from cds.reasoning.facts import MET, Answer, Evidence, FactEvaluator
from cds.reasoning.plan import Plan, plan_for
from cds.reasoning.scores import ScoreResult, evaluate_score
from cds.record import Measurement, PatientRecord, unit_words

DdimerState = Literal["none", "negative", "positive"]


@dataclass(frozen=True)
class DdimerResult:
    state: DdimerState
    measurement: Measurement | None = None
    assay: DdimerAssay | None = None
    threshold: float | None = None
    threshold_basis: str = ""
    older: Measurement | None = None  # the latest result too old to use, if any

    @property
    def evidence(self) -> list[Evidence]:
        return [Evidence(self.measurement.reference, self.measurement.text)] if (
            self.measurement) else []


_NO_DDIMER = DdimerResult("none")  # frozen: shared by every call without a D-dimer


@dataclass(slots=True)  # made on every call: see cds.reasoning.facts.Answer
class DvtResult:
    wells: ScoreResult
    ddimer: DdimerResult
    diagnosed: Answer
    step: PathwayStep
    # a population the pathway does not cover (pregnancy, under 18), with its evidence
    population: Population | None = None
    population_answer: Answer | None = None
    # a DVT recorded as provisional, differential or unconfirmed: a suspicion, not a diagnosis
    suspected: Answer | None = None


def latest_ddimer(content: Content, record: PatientRecord, plan: Plan | None = None,
                  ) -> DdimerResult:
    """The newest D-dimer within the validity window, judged against its assay's cut-off
    (`plan`: the content's, if the caller has it at hand)."""
    measurements = record.measurements
    concepts = (plan or plan_for(content)).ddimer_concepts
    if not any(measurements.get(c) for c in concepts):
        return _NO_DDIMER  # most charts: no D-dimer at all
    assays = [a for a in content.dvt.ddimer.assays if measurements.get(a.concept)]
    window = timedelta(hours=content.dvt.ddimer.valid_hours)
    latest = record.as_of + timedelta(hours=12)
    candidates: list[tuple[Measurement, DdimerAssay]] = []
    for assay in assays:
        for m in measurements[assay.concept]:
            if m.value is not None and m.when is not None and m.when <= latest:
                candidates.append((m, assay))
    if not candidates:
        return _NO_DDIMER
    candidates.sort(key=lambda pair: pair[0].when, reverse=True)  # type: ignore[arg-type, return-value]
    measurement, assay = candidates[0]
    assert measurement.when is not None and measurement.value is not None
    if measurement.when < record.as_of - window:
        return DdimerResult("none", older=measurement)
    age = record.age
    unit = unit_words(content.concepts[assay.concept].unit)
    if (assay.age_adjust_from is not None and assay.age_factor is not None and age is not None
            and age > assay.age_adjust_from):
        threshold = max(assay.cutoff, age * assay.age_factor)
        basis = f"age-adjusted cut-off {threshold:g}{unit}, age {age} × {assay.age_factor:g}"
    elif measurement.high is not None:
        threshold = measurement.high
        basis = f"the laboratory's upper reference limit {threshold:g}{unit}"
    else:
        threshold = assay.cutoff
        basis = f"cut-off {threshold:g}{unit}"
    state: DdimerState = "positive" if measurement.value >= threshold else "negative"
    return DdimerResult(state, measurement, assay, threshold, basis)


def evaluate_dvt(content: Content, record: PatientRecord, facts: FactEvaluator) -> DvtResult:
    """The pathway of `content`, which must be the content `facts` answers for."""
    plan = facts.plan  # the pathway's lists, compiled
    wells = evaluate_score(plan.dvt_score, facts)
    # most charts record no D-dimer at all
    ddimer = (_NO_DDIMER if facts.charted.isdisjoint(plan.ddimer_concepts)
              else latest_ddimer(content, record, plan))
    diagnosed = facts.group(plan.diagnosed)
    suspected = None
    if diagnosed.truth is not MET:
        anyhow = facts.group(plan.suspected)
        suspected = anyhow if anyhow.truth is MET else None
    population, population_answer, population_id = None, None, ""
    for candidate, candidate_id, group in plan.populations:
        answer = facts.group(group)
        if answer.truth is MET:
            population, population_answer, population_id = candidate, answer, candidate_id
            break
    if diagnosed.truth is MET:
        band = "diagnosed"
    elif population is not None:
        band = population_id
    else:
        band = wells.band.id if wells.band else "indeterminate"
    step = plan.steps.get((band, ddimer.state)) or next(
        s for s in content.dvt.steps
        if s.when_band == band and s.when_ddimer in (ddimer.state, "any")
    )
    return DvtResult(wells, ddimer, diagnosed, step, population, population_answer, suspected)
