"""Does the patient present with the problem now? Without it the service stays quiet.

The concepts and the window are in cards/rules/presentation.toml. A finding counts when it
is active (confirmed or suspected) and its onset or its recording falls in the window, or
when the encounter in context gives it as the reason for the visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds.content import Content
from cds.reasoning.facts import FUTURE_SLACK, Evidence
from cds.reasoning.plan import Plan, plan_for
from cds.record import Finding, PatientRecord


@dataclass(slots=True)  # never changed once made (see cds.reasoning.facts.Answer)
class PresentationResult:
    evidence: tuple[Evidence, ...]
    concepts: tuple[str, ...]  # what the patient presents with, most recent first
    label: str  # the complaint in words, for card summaries ("Thigh pain")
    leg: bool  # a complaint of the leg itself: the Wells DVT score applies

    @property
    def present(self) -> bool:
        return bool(self.concepts)


def _recency(finding: Finding | None) -> float:
    """How recent a presenting finding is: its onset or when it was written down, whichever
    is later; the encounter's own reason (no finding) before all."""
    if finding is None:
        return float("inf")
    when, recorded = finding.when, finding.recorded
    if when is None:
        return 0.0 if recorded is None else recorded.timestamp()
    return (when if recorded is None else max(when, recorded)).timestamp()


def _current(finding: Finding, lower: datetime, upper: datetime) -> bool:
    when, recorded = finding.when, finding.recorded
    return ((when is not None and lower <= when <= upper)
            or (recorded is not None and lower <= recorded <= upper))


def evaluate_presentation(content: Content, record: PatientRecord) -> PresentationResult:
    return presentation_of(plan_for(content), record)


def presentation_of(plan: Plan, record: PatientRecord) -> PresentationResult:
    """`evaluate_presentation` with the content's plan."""
    reasons, findings = record.encounter_reasons, record.findings
    # the presenting concepts the chart records, in the order cards/ lists them (most charts
    # record a handful of concepts; the list names two dozen)
    order = plan.presenting
    recorded = findings.keys() & order.keys()
    if reasons:
        recorded.update(c for c in reasons if c in order)
    if not recorded:
        return _ABSENT
    ordered = sorted(recorded, key=order.__getitem__) if len(recorded) > 1 else recorded
    lower = record.as_of - plan.presentation_window
    upper = record.as_of + FUTURE_SLACK
    found: list[tuple[Finding | None, str, Evidence]] = []
    for concept in ordered:
        if concept in reasons:
            found.append((None, concept, Evidence(
                reasons[concept], f"reason for this encounter: {plan.words[concept][0]}")))
        for finding in findings.get(concept, ()):
            if finding.status != "active":
                continue
            if (_current(finding, lower, upper)
                    or finding.reference in record.encounter_reason_refs):
                found.append((finding, concept, Evidence(finding.reference, finding.text)))
    if not found:
        return _ABSENT

    if len(found) == 1:  # most presenting charts: one finding
        _, concept, item = found[0]
        concepts: tuple[str, ...] = (concept,)
        evidence: tuple[Evidence, ...] = (item,)
    else:
        # most recent first (the encounter's own reason before all), ties in the order found
        found = [found[i] for i in sorted(range(len(found)), key=[
            _recency(finding) for finding, _, _ in found].__getitem__, reverse=True)]
        concepts = tuple(dict.fromkeys(c for _, c, _ in found))
        # each cited resource once, the first of equal ones (Evidence hashes by value)
        cited: dict[tuple[str, str], Evidence] = {}
        for _, _, item in found:
            cited.setdefault((item.reference, item.text), item)
        evidence = tuple(cited.values())
    leg = not plan.leg_concepts.isdisjoint(concepts)
    return PresentationResult(evidence, concepts, plan.words[concepts[0]][0], leg)


_ABSENT = PresentationResult((), (), "", False)  # shared by every call without one
