"""One call's reasoning: every rule family evaluated against one PatientRecord."""

from __future__ import annotations

from dataclasses import dataclass

from cds.content import Content
from cds.reasoning.differential import CauseResult, evaluate_differential
from cds.reasoning.dvt import DvtResult, evaluate_dvt
from cds.reasoning.facts import FactEvaluator
from cds.reasoning.presentation import PresentationResult, presentation_of
from cds.reasoning.red_flags import RedFlagResult, evaluate_red_flags
from cds.reasoning.scores import ScoreResult, evaluate_score
from cds.record import PatientRecord


@dataclass(slots=True)  # made on every call: see cds.reasoning.facts.Answer
class Assessment:
    record: PatientRecord
    dvt: DvtResult
    pe_score: ScoreResult
    red_flags: list[RedFlagResult]
    causes: list[CauseResult]
    presentation: PresentationResult

    @property
    def scores(self) -> dict[str, ScoreResult]:
        return {s.score.id: s for s in (self.dvt.wells, self.pe_score)}


def assess(content: Content, record: PatientRecord, always: bool = False) -> Assessment:
    """Pure: no I/O. Scores come first because red flags and causes may ask about them.

    Causes are ranked only for a patient who presents (or when the site answers `always`):
    without a presentation only standalone red flags can speak, and most charts opened are
    such charts, so they skip the differential's work."""
    facts = FactEvaluator(content, record)
    presentation = presentation_of(facts.plan, record)
    dvt = evaluate_dvt(content, record, facts)
    pe_score = evaluate_score(content.pe_score, facts)
    red_flags = evaluate_red_flags(content, facts)
    causes = (evaluate_differential(content, facts) if presentation.present or always
              else [])
    return Assessment(record, dvt, pe_score, red_flags, causes, presentation)
