"""The differential: causes ranked by transparent points, with what is for, against and missing.

The points are a ranking aid written in cards/rules/differential.toml next to their sources,
not validated probabilities; the card says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from cds.content import Cause, Content
from cds.reasoning.facts import MET, UNKNOWN, Answer, CriterionResult, FactEvaluator
from cds.reasoning.plan import CompiledSection


@dataclass(slots=True)  # made for each cause on each call: see cds.reasoning.facts.Answer
class CauseResult:
    cause: Cause
    documented: Answer
    supports: list[CriterionResult]
    against: list[CriterionResult]
    points: float
    # the met supports and against, worked out once, as the cause is (read by `met`)
    met_supports: list[CriterionResult]
    met_against: list[CriterionResult]

    def shown(self, from_points: float) -> bool:
        """Listed as a likely cause: documented, or enough supporting facts."""
        return self.documented.truth is MET or (
            self.points >= from_points and bool(self.met_supports))

    def met(self, which: str) -> list[CriterionResult]:
        """The met criteria of `supports` or `against`."""
        return self.met_supports if which == "supports" else self.met_against

    @property
    def missing(self) -> list[CriterionResult]:
        return [r for r in self.supports + self.against if r.truth is UNKNOWN]


def evaluate_differential(content: Content, facts: FactEvaluator) -> list[CauseResult]:
    """All causes, best supported first (ties keep the order written in cards/)."""
    if content is facts.content:
        ranked = facts.each(facts.plan.cause_sections, _evaluate_cause)
    else:
        ranked = [facts.section(cause, _evaluate_cause) for cause in content.differential.causes]
    ranked.sort(key=_POINTS, reverse=True)  # stable: ties keep their order
    return ranked


_POINTS = attrgetter("points")


def _evaluate_cause(cause: Cause, compiled: CompiledSection, facts: FactEvaluator,
                    ) -> CauseResult:
    own = compiled.own
    assert own is not None  # a cause's documented list, perhaps empty
    documented = facts.group(own)
    results, fresh = facts.evaluated(compiled)
    split = compiled.split
    supports, against = results[:split], results[split:]
    # only the criteria evaluated afresh can be met: the others are unknown
    met_supports: list[CriterionResult] = []
    met_against: list[CriterionResult] = []
    plus: float = 0  # summed in the criteria's order, as sum() would
    minus: float = 0
    weights = compiled.weights
    for position in fresh:
        r = results[position]
        if r.answer.truth is MET:
            if position < split:
                met_supports.append(r)
                plus += weights[position]
            else:
                met_against.append(r)
                minus += weights[position]
    points = ((facts.plan.documented_weight if documented.truth is MET else 0.0)
              + plus - minus)
    return CauseResult(cause, documented, supports, against, points, met_supports,
                       met_against)

