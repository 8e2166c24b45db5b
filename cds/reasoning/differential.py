"""The differential: causes ranked by transparent points, with what is for, against and missing.

The points are a ranking aid written in cards/rules/differential.toml next to their sources,
not validated probabilities; the card says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds.content import Cause, Content
from cds.reasoning.facts import Answer, CriterionResult, FactEvaluator, Truth


@dataclass(slots=True)  # made for each cause on each call: see cds.reasoning.facts.Answer
class CauseResult:
    cause: Cause
    documented: Answer
    supports: list[CriterionResult]
    against: list[CriterionResult]
    points: float

    def shown(self, from_points: float) -> bool:
        """Listed as a likely cause: documented, or enough supporting facts."""
        return self.documented.met or (
            self.points >= from_points and any(r.truth is Truth.MET for r in self.supports))

    def met(self, which: str) -> list[CriterionResult]:
        return [r for r in getattr(self, which) if r.truth is Truth.MET]

    @property
    def missing(self) -> list[CriterionResult]:
        return [r for r in self.supports + self.against if r.truth is Truth.UNKNOWN]


def evaluate_differential(content: Content, facts: FactEvaluator) -> list[CauseResult]:
    """All causes, best supported first (ties keep the order written in cards/)."""
    ranked = [facts.section(cause, _evaluate_cause, _copy)
              for cause in content.differential.causes]
    return sorted(ranked, key=lambda r: -r.points)


def _copy(kept: CauseResult) -> CauseResult:
    return CauseResult(kept.cause, kept.documented, list(kept.supports), list(kept.against),
                       kept.points)


def _evaluate_cause(cause: Cause, facts: FactEvaluator) -> CauseResult:
    weight = facts.content.differential.documented_weight
    documented = facts.any_fact(cause.documented)
    supports = [facts.criterion(c) for c in cause.supports]
    against = [facts.criterion(c) for c in cause.against]
    points = (weight if documented.met else 0.0) + sum(
        r.criterion.weight for r in supports if r.answer.truth is Truth.MET
    ) - sum(r.criterion.weight for r in against if r.answer.truth is Truth.MET)
    return CauseResult(cause, documented, supports, against, points)
