"""Assessment to CDS Hooks cards: one card per finding family, red flags first.

Every card says what it rests on (the FHIR resources, cited by reference), what could not be
assessed, where its advice comes from, and proposes orders as draft FHIR ServiceRequests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cds.content import Content, Indicator, Order
from cds.hooks import Action, Card, Link, OverrideReason, Source, Suggestion
from cds.reasoning.assessment import Assessment
from cds.reasoning.differential import CauseResult
from cds.reasoning.dvt import DvtResult
from cds.reasoning.facts import CriterionResult, Evidence, Truth, evidence_of
from cds.reasoning.red_flags import RedFlagResult

CARD_NAMESPACE = uuid.UUID("6f1c1d8e-3f4b-5a0e-9a51-7d2b8f3c2a10")
OVERRIDE_SYSTEM = "urn:thigh-pain-cds:override-reason"
EXTENSION_KEY = "thigh-pain-cds"
SUMMARY_LIMIT = 139
_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass
class CardContext:
    """Who and what the cards are for: ids for stable uuids and for the draft orders."""

    hook_instance: str
    patient_id: str
    user_id: str | None = None
    data_gaps: list[str] = field(default_factory=list)


@dataclass
class _Draft:
    key: str
    indicator: Indicator
    summary: str
    detail: str
    source: str
    also: list[str]
    evidence: list[Evidence]
    orders: list[str] = field(default_factory=list)
    recommended: str | None = None
    rank: int = 0


# ---------------------------------------------------------------- text helpers


def fit_summary(template: str, fields: dict[str, Any], items: list[str] | None = None) -> str:
    """Fill a summary template, dropping list items ('+2 more') to stay under 140 characters."""
    items = items or []
    for keep in range(len(items), 0, -1):
        shown = ", ".join(items[:keep]) + (f" +{len(items) - keep} more" if keep < len(items)
                                            else "")
        text = template.format_map({**fields, "flags": shown})
        if len(text) <= SUMMARY_LIMIT:
            return text
    text = template.format_map({**fields, "flags": f"{len(items)} signs"})
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def _cite(evidence: Iterable[Evidence]) -> str:
    return "; ".join(f"{e.text} [{e.reference}]" for e in evidence)


def _criterion_line(result: CriterionResult, points: bool = False) -> str:
    mark = {Truth.MET: "✔ met", Truth.NOT_MET: "✘ not met", Truth.UNKNOWN: "? unknown"}
    c = result.criterion
    value = f" ({c.points:+g})" if points else ""
    line = f"- {mark[result.truth]}: {c.label}{value}"
    if result.truth is not Truth.UNKNOWN and result.answer.evidence:
        line += f": {_cite(result.answer.evidence)}"
    elif result.truth is Truth.UNKNOWN:
        line += f": {c.ask or result.answer.reason}"
    return line


# ---------------------------------------------------------------- families


def _red_flag_draft(result: RedFlagResult, rank: int) -> _Draft:
    family = result.family
    labels = [r.criterion.label for r in result.met]
    summary = fit_summary(family.summary, {}, labels)
    lines = [f"**{family.urgency}.**", ""]
    if result.escalation is not None and result.escalation.met and family.escalate_reason:
        lines.append(f"Raised to {result.indicator} {family.escalate_reason}"
                     + (f": {_cite(result.escalation.evidence)}" if result.escalation.evidence
                        else "") + ".")
        lines.append("")
    lines.append("Red flags found:")
    lines += [_criterion_line(r) for r in result.met]
    asks = [r.criterion.ask for r in result.unknown if r.criterion.ask]
    if asks:
        lines += ["", "Also ask about:"]
        lines += [f"- {ask}" for ask in asks]
    lines += ["", family.action]
    evidence = evidence_of(result.met)
    if result.escalation is not None and result.escalation.met:
        evidence += list(result.escalation.evidence)
    return _Draft(f"red-flag/{family.id}", result.indicator, summary, "\n".join(lines),
                  family.source, family.also, evidence, list(family.orders), None, rank)


def _ddimer_words(dvt: DvtResult, content: Content) -> str:
    d = dvt.ddimer
    if d.measurement is not None and d.assay is not None:
        return (f"D-dimer **{d.state}**: {d.measurement.text}, against the {d.threshold_basis} "
                f"[{d.measurement.reference}].")
    if d.older is not None:
        hours = content.dvt.ddimer.valid_hours
        return (f"The latest D-dimer ({d.older.text}) is older than {hours} hours and says "
                f"nothing about today [{d.older.reference}].")
    return "No D-dimer result in the record."


def _dvt_draft(assessment: Assessment, content: Content, rank: int) -> _Draft:
    dvt = assessment.dvt
    wells = dvt.wells
    fields = {
        "points": f"{wells.points:g}",  # documented points
        # the score in a few words: "2" when complete, "at least 2" with unknowns left
        "score": f"{wells.points:g}" if not wells.unknown else f"at least {wells.low:g}",
        "unknown": len(wells.unknown),
        "wells": wells.describe(),
        "ddimer": _ddimer_words(dvt, content),
    }
    summary = fit_summary(dvt.step.summary, fields)
    lines = [dvt.step.detail.format_map(fields), "", f"**{wells.score.title}**"]
    lines += [_criterion_line(r, points=True) for r in wells.results]
    for r in wells.pending_judgement:
        lines += ["", f"Not counted: {r.criterion.label} ({r.criterion.points:+g}) is the "
                      "clinician's call; subtract it if it applies."]
    if dvt.step.when_band == "diagnosed":
        lines = [dvt.step.detail, "", _cite(dvt.diagnosed.evidence)]
    evidence = list(dvt.diagnosed.evidence) + evidence_of(wells.results) + dvt.ddimer.evidence
    return _Draft("dvt", dvt.step.indicator, summary, "\n".join(lines), content.dvt.source,
                  list(wells.score.also), evidence, list(dvt.step.orders), dvt.step.recommended,
                  rank)


def _score_lines(assessment: Assessment, score_id: str) -> list[str]:
    score = assessment.scores[score_id]
    lines = ["", f"**{score.score.title}: {score.describe()}**"]
    lines += [_criterion_line(r, points=True) for r in score.results]
    return lines


def _unassessed_draft(assessment: Assessment, content: Content, rank: int) -> _Draft | None:
    unknown = [r for fam in assessment.red_flags if not fam.fired for r in fam.unknown
               if r.criterion.ask]
    if not unknown:
        return None
    rf = content.red_flags
    summary = fit_summary(rf.unassessed_card_summary, {"count": len(unknown)})
    lines = [rf.unassessed_card_detail, ""]
    for fam in assessment.red_flags:
        asks = "; ".join(r.criterion.ask for r in fam.unknown if r.criterion.ask)
        if fam.fired or not asks:
            continue
        lines.append(f"- **{fam.family.title}** ({fam.family.urgency.lower()}): {asks}")
    quiet = [fam.family.title for fam in assessment.red_flags if not fam.fired and not fam.unknown]
    if quiet:
        lines += ["", "Checked and not found in the record: " + ", ".join(quiet) + "."]
    return _Draft("red-flags/unassessed", "info", summary, "\n".join(lines), rf.source, [], [],
                  [], None, rank)


def _cause_block(result: CauseResult) -> list[str]:
    cause = result.cause
    lines = [f"**{cause.label}** ({cause.group}, {result.points:g} points)"]
    if result.documented.met:
        lines.append(f"- on record: {_cite(result.documented.evidence)}")
    for r in result.met("supports"):
        lines.append(f"- for (+{r.criterion.weight:g}): {r.criterion.label}: "
                     f"{_cite(r.answer.evidence)}")
    for r in result.met("against"):
        lines.append(f"- against (−{r.criterion.weight:g}): {r.criterion.label}: "
                     f"{_cite(r.answer.evidence)}")
    missing = [r.criterion.ask or r.criterion.label for r in result.missing]
    if missing:
        lines.append("- missing: " + "; ".join(missing))
    if cause.helps:
        lines.append("- would help decide: " + "; ".join(cause.helps))
    return lines


def _differential_draft(assessment: Assessment, content: Content, rank: int) -> _Draft:
    diff = content.differential
    shown = [r for r in assessment.causes if r.shown(diff.show_from_points)][: diff.show_at_most]
    lines: list[str] = []
    if shown:
        names = [r.cause.label for r in shown]
        summary = fit_summary("Likely causes from the record: {flags}", {}, names)
        for group in ("musculoskeletal", "neurological", "vascular"):
            blocks = [r for r in shown if r.cause.group == group]
            if blocks:
                lines += [f"### {group.capitalize()}", ""]
                for r in blocks:
                    lines += [*_cause_block(r), ""]
    else:
        summary = "No coded finding points to a cause yet: history and examination will decide"
        lines += ["Nothing in the coded record supports one cause over another. What would help:",
                  ""]
    unsupported = [r for r in assessment.causes if r not in shown]
    if unsupported:
        lines += ["**Not supported by the record (examine to decide):**"]
        for r in unsupported:
            first = r.cause.helps[0] if r.cause.helps else ""
            lines.append(f"- {r.cause.label} ({r.cause.group}): {first}")
    lines += ["", f"_{diff.method}_"]
    orders = list(dict.fromkeys(o for r in shown for o in r.cause.orders))
    evidence = [e for r in shown for e in r.documented.evidence] + evidence_of(
        [x for r in shown for x in r.supports + r.against])
    source = shown[0].cause.source if shown else "nice-ng59"
    also = list(dict.fromkeys(r.cause.source for r in shown[1:] if r.cause.source != source))
    return _Draft("differential", "info", summary, "\n".join(lines), source, also, evidence,
                  orders, None, rank)


# ---------------------------------------------------------------- rendering


def _service_request(order: Order, content: Content, ctx: CardContext, reasons: list[Evidence],
                     ) -> dict[str, Any]:
    coding = [
        {"system": content.systems[c.system], "code": c.code, "display": c.display}
        for c in order.codings
    ]
    code: dict[str, Any] = {"text": order.label}
    if coding:  # orders without a verified code go as text for the EHR to map
        code["coding"] = coding
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "priority": order.priority,
        "code": code,
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
    }
    if ctx.user_id and ctx.user_id.split("/")[0] in {"Practitioner", "PractitionerRole"}:
        resource["requester"] = {"reference": ctx.user_id}
    refs = [e.reference for e in reasons if e.reference.split("/")[0] in {
        "Condition", "Observation"} and "/" in e.reference]
    if refs:
        resource["reasonReference"] = [{"reference": r} for r in dict.fromkeys(refs)]
    if order.note:
        resource["note"] = [{"text": order.note}]
    return resource


def _card(draft: _Draft, content: Content, ctx: CardContext) -> Card:
    card_id = uuid.uuid5(CARD_NAMESPACE, f"{ctx.hook_instance}/{draft.key}")
    src = content.sources[draft.source]
    detail = [draft.detail]
    cited = list(dict.fromkeys(e.reference for e in draft.evidence))
    if cited:
        detail += ["", f"**{content.texts.evidence_heading}:** " + ", ".join(cited)]
    if ctx.data_gaps:
        detail += ["", f"**{content.texts.gaps_heading}:** " + "; ".join(ctx.data_gaps)]
    detail += ["", f"_{content.texts.disclaimer}_"]
    suggestions = []
    for order_id in draft.orders:
        order = content.orders[order_id]
        resource = _service_request(order, content, ctx, draft.evidence)
        suggestions.append(Suggestion(
            label=f"Order: {order.label}",
            uuid=str(uuid.uuid5(card_id, order_id)),
            isRecommended=True if order_id == draft.recommended else None,
            actions=[Action(type="create", description=f"Create a draft order: {order.label}",
                            resource=resource)],
        ))
    links = [
        Link.model_validate({"label": content.sources[s].label,
                             "url": content.sources[s].url, "type": "absolute"})
        for s in dict.fromkeys([draft.source, *draft.also])
    ]
    return Card(
        uuid=str(card_id),
        summary=draft.summary,
        detail="\n".join(detail),
        indicator=draft.indicator,
        source=Source.model_validate({"label": src.label, "url": src.url}),
        suggestions=suggestions or None,
        selectionBehavior="any" if suggestions else None,
        overrideReasons=[
            OverrideReason(system=OVERRIDE_SYSTEM, code=r.code, display=r.display)
            for r in content.texts.override_reasons
        ],
        links=links or None,
        extension={EXTENSION_KEY: {"cardType": draft.key, "evidence": cited}},
    )


def render_cards(assessment: Assessment, content: Content, ctx: CardContext) -> list[Card]:
    """Cards in the order a clinician should read them: critical, warning, info."""
    drafts: list[_Draft] = []
    for rank, result in enumerate(assessment.red_flags):
        if result.fired:
            draft = _red_flag_draft(result, rank)
            if result.family.show_score:
                draft.detail += "\n" + "\n".join(_score_lines(assessment,
                                                             result.family.show_score))
            drafts.append(draft)
    drafts.append(_dvt_draft(assessment, content, 50))
    unassessed = _unassessed_draft(assessment, content, 60)
    if unassessed is not None:
        drafts.append(unassessed)
    drafts.append(_differential_draft(assessment, content, 70))
    drafts.sort(key=lambda d: (_ORDER[d.indicator], d.rank))
    return [_card(d, content, ctx) for d in drafts]
