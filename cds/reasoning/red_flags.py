"""Red flags: each family (cauda equina, PE, infection, ...) is met when any of its flags is."""

from __future__ import annotations

from dataclasses import dataclass

from cds.content import Content, Indicator, RedFlagFamily
from cds.reasoning.facts import MET, UNKNOWN, Answer, CriterionResult, FactEvaluator
from cds.reasoning.plan import CompiledSection


@dataclass(slots=True)  # made for each family on each call: see cds.reasoning.facts.Answer
class RedFlagResult:
    """`met`, `unknown` and `fired` are worked out once, as the family is: the cards read
    them more than once."""

    family: RedFlagFamily
    results: list[CriterionResult]
    escalation: Answer | None
    standalone: bool  # a met flag that matters without a current presentation
    met: list[CriterionResult]
    unknown: list[CriterionResult]
    fired: bool  # any flag is met

    def shown(self, presenting: bool) -> bool:
        """Standalone flags always speak; the others need the thigh, leg or back complaint."""
        return self.standalone or (presenting and self.fired)

    @property
    def indicator(self) -> Indicator:
        if self.escalation is not None and self.escalation.met and self.family.escalate_to:
            return self.family.escalate_to
        return self.family.indicator


def evaluate_red_flags(content: Content, facts: FactEvaluator) -> list[RedFlagResult]:
    families = (facts.plan.families if content is facts.content
                else content.red_flags.families)
    return [facts.section(family, _evaluate_family) for family in families]


def _evaluate_family(family: RedFlagFamily, compiled: CompiledSection, facts: FactEvaluator,
                     ) -> RedFlagResult:
    flags = facts.results(compiled)
    own = compiled.own
    escalation = facts.group(own) if own is not None and own.facts else None
    met: list[CriterionResult] = []
    unknown: list[CriterionResult] = []
    standalone = False
    for r, alone, alone_with in zip(flags, compiled.standalone, compiled.standalone_with,
                                    strict=True):
        truth = r.answer.truth
        if truth is MET:
            met.append(r)
            if not standalone:
                standalone = alone or (alone_with is not None
                                      and facts.group(alone_with).truth is MET)
        elif truth is UNKNOWN:
            unknown.append(r)
    return RedFlagResult(family, flags, escalation, standalone, met, unknown, bool(met))

