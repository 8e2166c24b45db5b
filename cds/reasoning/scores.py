"""Point scores (Wells DVT, Wells PE) with honest ranges when criteria are unknown."""

from __future__ import annotations

from dataclasses import dataclass

from cds.content import Band, Score
from cds.reasoning.facts import MET, UNKNOWN, CriterionResult, FactEvaluator
from cds.reasoning.plan import CompiledSection


@dataclass(slots=True)  # see cds.reasoning.facts.Answer
class ScoreResult:
    """The lists after `band` are worked out once, as the score is: the cards read them
    several times."""

    score: Score
    results: list[CriterionResult]
    points: float  # documented points: the criteria that are met
    low: float  # lowest total the unknown criteria allow
    high: float  # highest total the unknown criteria allow
    band: Band | None  # None when the unknowns allow more than one band
    met: list[CriterionResult]
    # unknown criteria that widen the range (judgement calls are stated separately)
    unknown: list[CriterionResult]
    # unknown judgement calls that could only lower the score: stated, not put in the range
    # (so that it can only err towards more testing); those that raise it widen the range
    pending_judgement: list[CriterionResult]

    def describe(self) -> str:
        """'2 (likely)' or 'at least 1, up to 6: 5 criteria unknown'."""
        if self.band is not None and not self.unknown:
            return f"{self.points:g} ({self.band.label})"
        unknown = len(self.unknown)
        if self.band is not None:
            return (f"{self.band.label}: documented {self.points:g}, "
                    f"between {self.low:g} and {self.high:g} with {unknown} criteria unknown")
        return (f"documented {self.points:g}; between {self.low:g} and {self.high:g} "
                f"with {unknown} criteria unknown")


def _band_for(score: Score, low: float, high: float, facts: FactEvaluator) -> Band | None:
    bands = facts.plan.score_bands.get(id(score))
    if bands is None:  # not one of the content's scores
        bands = tuple((b, b.min, b.max) for b in score.bands)
    for band, least, most in bands:
        if (least is None or low >= least) and (most is None or high <= most):
            return band
    return None


def evaluate_score(score: Score, facts: FactEvaluator) -> ScoreResult:
    result = facts.section(score, _evaluate)
    facts.score_ranges[score.id] = (result.low, result.high)
    return result


def _evaluate(score: Score, compiled: CompiledSection, facts: FactEvaluator) -> ScoreResult:
    results = facts.score_results(score, compiled)
    met: list[CriterionResult] = []
    unknown: list[CriterionResult] = []
    pending: list[CriterionResult] = []
    points: float = 0  # summed in the criteria's order, as sum() would
    below: float = 0  # what the unknown criteria could take away
    above: float = 0  # what they could add
    for r, p, lowers in zip(results, compiled.points, compiled.lowers, strict=True):
        truth = r.answer.truth
        if truth is MET:
            met.append(r)
            points += p
        elif truth is UNKNOWN:
            if lowers:
                pending.append(r)
            else:
                unknown.append(r)
                if p < 0:
                    below += p
                elif p > 0:
                    above += p
    low = points + below
    high = points + above
    return ScoreResult(score, results, points, low, high, _band_for(score, low, high, facts),
                       met, unknown, pending)

