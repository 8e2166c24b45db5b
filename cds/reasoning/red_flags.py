"""Red flags: each family (cauda equina, PE, infection, ...) is met when any of its flags is."""

from __future__ import annotations

from dataclasses import dataclass

from cds.content import Content, Indicator, RedFlagFamily
from cds.reasoning.facts import Answer, CriterionResult, FactEvaluator, Truth


@dataclass(slots=True)  # made for each family on each call: see cds.reasoning.facts.Answer
class RedFlagResult:
    family: RedFlagFamily
    results: list[CriterionResult]
    escalation: Answer | None
    standalone: bool = False  # a met flag that matters without a current presentation

    @property
    def met(self) -> list[CriterionResult]:
        return [r for r in self.results if r.truth is Truth.MET]

    @property
    def unknown(self) -> list[CriterionResult]:
        return [r for r in self.results if r.truth is Truth.UNKNOWN]

    @property
    def fired(self) -> bool:
        return bool(self.met)

    def shown(self, presenting: bool) -> bool:
        """Standalone flags always speak; the others need the thigh, leg or back complaint."""
        return self.standalone or (presenting and self.fired)

    @property
    def indicator(self) -> Indicator:
        if self.escalation is not None and self.escalation.met and self.family.escalate_to:
            return self.family.escalate_to
        return self.family.indicator


def evaluate_red_flags(content: Content, facts: FactEvaluator) -> list[RedFlagResult]:
    return [facts.section(family, _evaluate_family, _copy) for family in content.red_flags.families]


def _copy(kept: RedFlagResult) -> RedFlagResult:
    return RedFlagResult(kept.family, list(kept.results), kept.escalation, kept.standalone)


def _evaluate_family(family: RedFlagFamily, facts: FactEvaluator) -> RedFlagResult:
    flags = [facts.criterion(c) for c in family.flags]
    escalation = facts.any_fact(family.escalate_when) if family.escalate_when else None
    standalone = any(
        r.answer.truth is Truth.MET and (r.criterion.standalone or (
            r.criterion.standalone_with
            and facts.any_fact(r.criterion.standalone_with).met))
        for r in flags
    )
    return RedFlagResult(family, flags, escalation, standalone)
