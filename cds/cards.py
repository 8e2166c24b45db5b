"""Assessment to CDS Hooks cards: few, short, red flags first, ordered by time to act.

Quiet unless it matters: without a current presentation (cards/rules/presentation.toml) only
standalone red flags speak. A presenting patient gets the red-flag cards that fire, and at most
three more (the DVT pathway, one checklist of what the record cannot answer, the likely
causes), each detail within DETAIL_LIMIT characters and all within TOTAL_LIMIT. The prose
names findings as a clinician would; the FHIR references behind each card go in its
`extension` for machines, never in the text. Orders are proposed as draft ServiceRequests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cds.content import ACT_ORDER, ActWithin, Content, Indicator, Order
from cds.hooks import Action, Card, Link, OverrideReason, Source, Suggestion
from cds.reasoning.assessment import Assessment
from cds.reasoning.differential import CauseResult
from cds.reasoning.facts import CriterionResult, Evidence, Truth, evidence_of
from cds.reasoning.red_flags import RedFlagResult
from cds.reasoning.scores import ScoreResult
from cds.smart.apps import add_smart_links

CARD_NAMESPACE = uuid.UUID("6f1c1d8e-3f4b-5a0e-9a51-7d2b8f3c2a10")
OVERRIDE_SYSTEM = "urn:thigh-pain-cds:override-reason"
EXTENSION_KEY = "thigh-pain-cds"
SUMMARY_LIMIT = 139
DETAIL_LIMIT = 1000  # characters of Markdown in one card's detail
TOTAL_LIMIT = 2500  # and in all the cards of one answer
MAX_OTHER_CARDS = 3  # cards besides the red-flag cards
_ORDER = {"critical": 0, "warning": 1, "info": 2}
_ACT_WORDS = {"now": "act now", "hours": "within hours", "same day": "same day",
              "days": "within days"}
_PARENTHESIS = re.compile(r"\s*\([^)]*\)")
_SHORTENED = "_(shortened to keep the card brief)_"


@dataclass
class CardContext:
    """Who and what the cards are for: ids for stable uuids and for the draft orders."""

    hook_instance: str
    patient_id: str
    user_id: str | None = None
    data_gaps: list[str] = field(default_factory=list)
    always: bool = False  # answer even without a presentation (a site's demo setting)


@dataclass
class _Draft:
    key: str
    indicator: Indicator
    summary: str
    lines: list[str]
    source: str
    also: list[str]
    evidence: list[Evidence]
    act_within: ActWithin
    red_flag: bool
    orders: list[str] = field(default_factory=list)
    recommended: str | None = None
    rank: int = 0
    tail: list[str] = field(default_factory=list)  # kept when the detail is shortened

    def detail(self) -> str:
        return "\n".join([*self.lines, *self.tail]).strip()

    def shorten(self, limit: int) -> None:
        """Drop whole lines from the end of the body until the detail fits."""
        if len(self.detail()) <= limit:
            return
        tail = ["", _SHORTENED, *self.tail]
        while len(self.lines) > 1 and len("\n".join([*self.lines, *tail])) > limit:
            self.lines.pop()
        while self.lines and not self.lines[-1].strip():
            self.lines.pop()
        self.tail = tail


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


def _facts(evidence: Iterable[Evidence]) -> str:
    """What the chart says, in words (the references go in the card's extension)."""
    return "; ".join(dict.fromkeys(e.text for e in evidence))


def _found(result: CriterionResult) -> str:
    facts = _facts(result.answer.evidence)
    return f"- {result.criterion.label}: {facts}" if facts else f"- {result.criterion.label}"


def _asks(results: Iterable[CriterionResult]) -> list[str]:
    return [r.criterion.check or r.criterion.label for r in results
            if r.truth is Truth.UNKNOWN and (r.criterion.ask or r.criterion.check)]


def _score_lines(score: ScoreResult, facts: bool = True) -> list[str]:
    """A score: its total, what counted (with the chart's words), what is still open."""
    lines = [f"**{score.score.short}: {score.describe()}.**"]

    def named(r: CriterionResult) -> str:
        return f"{r.criterion.check or r.criterion.label} {r.criterion.points:+g}"

    counted = [(named(r), r) for r in score.met]
    if facts:
        lines += [f"- {name}: {_facts(r.answer.evidence)}" if r.answer.evidence else f"- {name}"
                  for name, r in counted]
    elif counted:
        lines.append("Counted: " + ", ".join(name for name, _ in counted) + ".")
    unknown = [named(r) for r in score.unknown]
    if unknown:  # a paragraph of its own, never read as part of the last bullet
        lines += ["", "Unknown: " + ", ".join(unknown) + "."]
    return lines


# ---------------------------------------------------------------- families


def _red_flag_draft(result: RedFlagResult, assessment: Assessment, content: Content,
                    rank: int) -> _Draft:
    family = result.family
    labels = [r.criterion.label for r in result.met]
    presenting = assessment.presentation.label or "Thigh, leg or back complaint"
    summary = fit_summary(family.summary, {"presentation": presenting}, labels)
    lines = [f"**{family.urgency}.**", ""]
    if result.escalation is not None and result.escalation.met and family.escalate_reason:
        why = _facts(result.escalation.evidence)
        lines += [f"Raised to {result.indicator} {family.escalate_reason}"
                  + (f": {why}" if why else "") + ".", ""]
    lines += [_found(r) for r in result.met]
    lines += ["", family.action]
    if family.show_score:  # its criteria, without repeating the facts listed above
        lines += ["", *_score_lines(assessment.scores[family.show_score], facts=False)]
    asks = _asks(result.results)
    if asks:  # last: the first words to go if the card must be shortened
        lines += ["", "Also ask: " + ", ".join(asks) + "."]
    evidence = evidence_of(result.met)
    if result.escalation is not None and result.escalation.met:
        evidence += list(result.escalation.evidence)
    return _Draft(f"red-flag/{family.id}", result.indicator, summary, lines, family.source,
                  family.also, evidence, family.act_within, True, list(family.orders), None,
                  rank)


def _ddimer_words(assessment: Assessment, content: Content) -> str:
    d = assessment.dvt.ddimer
    if d.measurement is not None and d.assay is not None:
        return f"D-dimer **{d.state}**: {d.measurement.text}, against the {d.threshold_basis}."
    if d.older is not None:
        hours = content.dvt.ddimer.valid_hours
        return (f"The latest D-dimer ({d.older.text}) is older than {hours} hours and says "
                "nothing about today.")
    return "No D-dimer result in the record."


def _wells_score(wells: ScoreResult) -> str:
    """'2', or 'at least 2' while criteria are unknown."""
    return f"{wells.points:g}" if not wells.unknown else f"at least {wells.low:g}"


def _dvt_draft(assessment: Assessment, content: Content, rank: int) -> _Draft:
    dvt = assessment.dvt
    wells = dvt.wells
    fields = {
        "points": f"{wells.points:g}",
        "score": _wells_score(wells),
        "unknown": len(wells.unknown),
        "wells": wells.describe(),
        "ddimer": _ddimer_words(assessment, content),
    }
    step = dvt.step
    summary = fit_summary(step.summary, fields)
    red_flag = step.when_band in {"likely", "diagnosed"} or dvt.ddimer.state == "positive"
    if step.when_band == "diagnosed":
        lines = [step.detail, "", "On record: " + _facts(dvt.diagnosed.evidence) + "."]
        evidence = list(dvt.diagnosed.evidence)
    elif dvt.population is not None and dvt.population_answer is not None:
        # outside the Wells pathway (pregnancy, under 18): say why and what applies instead
        lines = [step.detail.format_map(fields), "",
                 f"{dvt.population.label}: " + _facts(dvt.population_answer.evidence) + "."]
        evidence = list(dvt.population_answer.evidence) + dvt.ddimer.evidence
        return _Draft("dvt", step.indicator, summary, lines, dvt.population.source, [],
                      evidence, step.act_within, False, list(step.orders), step.recommended,
                      rank)
    else:
        lines = [*_score_lines(wells), "", step.detail.format_map(fields)]
        evidence = evidence_of(wells.results) + dvt.ddimer.evidence
        if dvt.suspected is not None:
            lines += ["", "Suspected, not confirmed (provisional, differential or unconfirmed): "
                          + _facts(dvt.suspected.evidence) + "; the pathway applies until it "
                          "is confirmed or excluded."]
            evidence += list(dvt.suspected.evidence)
        for r in wells.pending_judgement:
            lines += ["", f"Not counted: {r.criterion.label} ({r.criterion.points:+g}), the "
                          "clinician's call."]
    return _Draft("dvt", step.indicator, summary, lines, content.dvt.source,
                  list(wells.score.also), evidence, step.act_within, red_flag,
                  list(step.orders), step.recommended, rank)


def _checklist_draft(assessment: Assessment, content: Content, shown: set[str],
                     wells_open: bool, rank: int) -> _Draft | None:
    """One list of what to ask or examine, what changes management soonest first."""
    entries: list[tuple[int, int, str, str]] = []  # (act order, rank, short name, line)
    for n, fam in enumerate(assessment.red_flags):
        if fam.family.id in shown:
            continue  # its own card lists what is still open
        asks = _asks(fam.results)
        if asks:
            when = _ACT_WORDS[fam.family.act_within]
            line = f"- **{fam.family.short}** ({when}): {', '.join(asks)}"
            entries.append((ACT_ORDER[fam.family.act_within], n, fam.family.short, line))
    if wells_open:
        wells = assessment.dvt.wells
        line = "- " + content.checklist.wells_line.format_map(
            {"score": f"{wells.points:g} so far", "unknown": len(wells.unknown)})
        line += ": " + ", ".join(_asks(wells.results))
        entries.append((ACT_ORDER["hours"], -1, "Wells DVT items", line))
    if not entries:
        return None
    entries.sort(key=lambda e: (e[0], e[1]))
    names = [e[2] for e in entries]
    summary = fit_summary(content.checklist.summary, {}, names)
    lines = [content.checklist.intro, "", *(e[3] for e in entries)]
    orders = ["ddimer_test"] if wells_open and "ddimer_test" in content.orders else []
    return _Draft("checklist", "info", summary, lines, content.checklist.source, [], [],
                  "now", False, orders, None, rank)


def _cause_line(result: CauseResult) -> str:
    cause = result.cause
    parts = []
    if result.documented.met:
        parts.append("on record: " + _facts(result.documented.evidence))
    supports = [r.criterion.label for r in result.met("supports")]
    if supports:
        parts.append("for: " + ", ".join(supports))
    against = [r.criterion.label for r in result.met("against")]
    if against:
        parts.append("against: " + ", ".join(against))
    line = f"- **{cause.label}** ({result.points:g} points): " + "; ".join(parts) + "."
    if cause.helps:
        line += f" Would help: {cause.helps[0]}."
    return line


def _differential_draft(assessment: Assessment, content: Content, rank: int) -> _Draft:
    diff = content.differential
    shown = [r for r in assessment.causes if r.shown(diff.show_from_points)][: diff.show_at_most]
    if shown:
        summary = fit_summary("Likely causes from the record: {flags}", {},
                              [r.cause.label for r in shown])
        lines = [_cause_line(r) for r in shown]
    else:
        summary = "No coded finding points to a cause yet: history and examination will decide"
        lines = []
    others = [_PARENTHESIS.sub("", r.cause.label) for r in assessment.causes
              if r not in shown]
    if others:
        lines += ["", "Not supported by the record yet (examine to decide): "
                  + ", ".join(others) + "."]
    lines += ["", f"_{diff.method}_"]
    orders = list(dict.fromkeys(o for r in shown for o in r.cause.orders))
    evidence = [e for r in shown for e in r.documented.evidence] + evidence_of(
        [x for r in shown for x in r.supports + r.against])
    source = shown[0].cause.source if shown else "nice-ng59"
    also = list(dict.fromkeys(r.cause.source for r in shown[1:] if r.cause.source != source))
    return _Draft("differential", "info", summary, lines, source, also, evidence, "days",
                  False, orders, None, rank)


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


_STATIC: dict[int, tuple[Content, dict[str, Any]]] = {}


def _static(content: Content) -> dict[str, Any]:
    """Links, sources and override reasons are the same on every call: validated once per
    content rather than on every card."""
    entry = _STATIC.get(id(content))
    if entry is None or entry[0] is not content:
        if len(_STATIC) > 16:
            _STATIC.clear()
        entry = _STATIC[id(content)] = (content, {
            "links": {sid: Link.model_validate({"label": src.label, "url": src.url,
                                                "type": "absolute"})
                      for sid, src in content.sources.items()},
            "sources": {sid: Source.model_validate({"label": src.label, "url": src.url})
                        for sid, src in content.sources.items()},
            "override": [OverrideReason(system=OVERRIDE_SYSTEM, code=r.code, display=r.display)
                         for r in content.texts.override_reasons],
        })
    return entry[1]


def _card(draft: _Draft, content: Content, ctx: CardContext) -> Card:
    card_id = uuid.uuid5(CARD_NAMESPACE, f"{ctx.hook_instance}/{draft.key}")
    cited = list(dict.fromkeys(e.reference for e in draft.evidence))
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
    static = _static(content)
    links = [static["links"][s] for s in dict.fromkeys([draft.source, *draft.also])]
    return Card(
        uuid=str(card_id),
        summary=draft.summary,
        detail=draft.detail(),
        indicator=draft.indicator,
        source=static["sources"][draft.source],
        suggestions=suggestions or None,
        selectionBehavior="any" if suggestions else None,
        overrideReasons=list(static["override"]),
        links=links or None,
        extension={EXTENSION_KEY: {
            "cardType": draft.key,
            "actWithin": draft.act_within,
            "redFlag": draft.red_flag,
            "evidence": cited,
        }},
    )


def _fit_budget(drafts: list[_Draft]) -> None:
    """Every detail within DETAIL_LIMIT and all within TOTAL_LIMIT: the cards read last give
    way first, so red flags keep their words."""
    for draft in drafts:
        draft.shorten(DETAIL_LIMIT)
    for draft in reversed(drafts):
        excess = sum(len(d.detail()) for d in drafts) - TOTAL_LIMIT
        if excess <= 0:
            return
        draft.shorten(max(len(draft.detail()) - excess, 200))


def draft_cards(assessment: Assessment, content: Content, ctx: CardContext) -> list[_Draft]:
    presentation = assessment.presentation
    presenting = presentation.present or ctx.always
    drafts = [_red_flag_draft(r, assessment, content, n)
              for n, r in enumerate(assessment.red_flags) if r.shown(presentation.present)]
    if presenting:
        dvt_applies = presentation.leg or ctx.always
        # an incomplete Wells score without a D-dimer is a checklist item, unless a DVT is
        # already suspected on the chart: then it keeps a card of its own
        wells_open = (dvt_applies and assessment.dvt.step.when_band == "indeterminate"
                      and assessment.dvt.ddimer.state == "none"
                      and assessment.dvt.suspected is None)
        if dvt_applies and not wells_open:
            drafts.append(_dvt_draft(assessment, content, 50))
        shown = {d.key.removeprefix("red-flag/") for d in drafts}
        checklist = _checklist_draft(assessment, content, shown, wells_open, 60)
        if checklist is not None:
            drafts.append(checklist)
        drafts.append(_differential_draft(assessment, content, 70))
    if drafts and ctx.data_gaps:
        gaps = "; ".join(ctx.data_gaps)
        gaps = gaps if len(gaps) <= 240 else gaps[:239] + "…"
        last = next((d for d in drafts if d.key == "checklist"), drafts[-1])
        last.tail += ["", f"**{content.texts.gaps_heading}:** {gaps}"]
    for draft in drafts:
        draft.tail += ["", f"_{content.texts.disclaimer}_"]
    drafts.sort(key=lambda d: (_ORDER[d.indicator], ACT_ORDER[d.act_within], d.rank))
    others = [d for d in drafts if not d.red_flag]
    for extra in others[MAX_OTHER_CARDS:]:
        drafts.remove(extra)
    _fit_budget(drafts)
    return drafts


def render_cards(assessment: Assessment, content: Content, ctx: CardContext) -> list[Card]:
    """Cards in the order a clinician should act on them: by indicator, then time to act."""
    cards = [_card(d, content, ctx) for d in draft_cards(assessment, content, ctx)]
    return add_smart_links(cards, assessment, content, EXTENSION_KEY)  # cards/apps.toml
