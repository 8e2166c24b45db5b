"""Does the patient present with the problem now? Without it the service stays quiet.

The concepts and the window are in cards/rules/presentation.toml. A finding counts when it
is active (confirmed or suspected) and its onset or its recording falls in the window, or
when the encounter in context gives it as the reason for the visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cds.content import Content
from cds.reasoning.facts import FUTURE_SLACK, Evidence
from cds.record import Finding, PatientRecord


@dataclass(frozen=True)
class PresentationResult:
    evidence: tuple[Evidence, ...]
    concepts: tuple[str, ...]  # what the patient presents with, most recent first
    label: str  # the complaint in words, for card summaries ("Thigh pain")
    leg: bool  # a complaint of the leg itself: the Wells DVT score applies

    @property
    def present(self) -> bool:
        return bool(self.concepts)


def _moments(finding: Finding) -> list[datetime]:
    """Its onset and when it was written down, whichever the chart gives."""
    return [m for m in (finding.when, finding.recorded) if m is not None]


def _current(finding: Finding, lower: datetime, upper: datetime) -> bool:
    return any(lower <= m <= upper for m in _moments(finding))


def evaluate_presentation(content: Content, record: PatientRecord) -> PresentationResult:
    spec = content.presentation
    lower = record.as_of - timedelta(days=spec.within_days)
    upper = record.as_of + FUTURE_SLACK
    reasons, findings = record.encounter_reasons, record.findings
    found: list[tuple[Finding | None, str, Evidence]] = []
    for concept in spec.concepts:
        if concept in reasons:
            found.append((None, concept, Evidence(
                reasons[concept], f"reason for this encounter: {content.concepts[concept].label}")))
        for finding in findings.get(concept, ()):
            if finding.status != "active":
                continue
            if (_current(finding, lower, upper)
                    or finding.reference in record.encounter_reason_refs):
                found.append((finding, concept, Evidence(finding.reference, finding.text)))
    if not found:
        return PresentationResult((), (), "", False)

    def recency(item: tuple[Finding | None, str, Evidence]) -> float:
        finding = item[0]
        if finding is None:  # the encounter's own reason comes first
            return float("inf")
        moments = _moments(finding)
        return max(moments).timestamp() if moments else 0.0

    found.sort(key=recency, reverse=True)
    concepts = tuple(dict.fromkeys(c for _, c, _ in found))
    evidence = tuple(dict.fromkeys(e for _, _, e in found))
    leg = any(c in spec.dvt_concepts for c in concepts)
    return PresentationResult(evidence, concepts, content.concepts[concepts[0]].label, leg)
