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
    if content is facts.content:
        return facts.each(facts.plan.family_sections, _evaluate_family)
    return [facts.section(family, _evaluate_family) for family in content.red_flags.families]


def _evaluate_family(family: RedFlagFamily, compiled: CompiledSection, facts: FactEvaluator,
                     ) -> RedFlagResult:
    flags, fresh = facts.evaluated(compiled)
    own = compiled.own
    escalation = facts.group(own) if own is not None and own.facts else None
    # only the flags evaluated afresh can be met or not met: the others are unknown
    met: list[CriterionResult] = []
    standalone = False
    answered: list[int] = []  # the positions (ascending) of flags met or not met
    for position in fresh:
        r = flags[position]
        truth = r.answer.truth
        if truth is MET:
            met.append(r)
            if not standalone:
                alone_with = compiled.standalone_with[position]
                standalone = compiled.standalone[position] or (
                    alone_with is not None and facts.group(alone_with).truth is MET)
        if truth is not UNKNOWN:
            answered.append(position)
    # the unknown flags, in order: all of them but the few answered (rather than a test of
    # every flag's answer)
    unknown = list(flags)
    for position in reversed(answered):
        del unknown[position]
    return RedFlagResult(family, flags, escalation, standalone, met, unknown, bool(met))
