"""Assessment to CDS Hooks cards: few, short, red flags first, ordered by time to act.

Quiet unless it matters: without a current presentation (cards/rules/presentation.toml) only
standalone red flags speak. A presenting patient gets the red-flag cards that fire, and at most
three more (the DVT pathway, one checklist of what the record cannot answer, the likely
causes), each detail within DETAIL_LIMIT characters and all within TOTAL_LIMIT. The prose
names findings as a clinician would; the FHIR references behind each card go in its
`extension` for machines, never in the text. Orders are proposed as draft ServiceRequests.
"""

from __future__ import annotations

import hashlib
import re
import string
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from operator import attrgetter
from typing import Any

from cds.content import (
    ACT_ORDER,
    ActWithin,
    Cause,
    Content,
    Criterion,
    Indicator,
    Order,
    PathwayStep,
    RedFlagFamily,
    per_content,
)
from cds.hooks import Action, Card, Link, OverrideReason, Source, Suggestion
from cds.reasoning.assessment import Assessment
from cds.reasoning.differential import CauseResult
from cds.reasoning.facts import UNKNOWN, CriterionResult, Evidence, evidence_of
from cds.reasoning.red_flags import RedFlagResult
from cds.reasoning.scores import ScoreResult
from cds.smart.apps import smart_links

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


@dataclass(slots=True)
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

    def shorten(self, limit: int) -> str:
        """Drop whole lines from the end of the body until the detail fits; the detail."""
        detail = self.detail()
        if len(detail) <= limit:
            return detail
        tail = ["", _SHORTENED, *self.tail]
        # the length of "\n".join([*lines, *tail]), kept as lines are dropped
        length = sum(map(len, self.lines)) + sum(map(len, tail)) + len(self.lines) + len(tail) - 1
        while len(self.lines) > 1 and length > limit:
            length -= len(self.lines.pop()) + 1
        while self.lines and not self.lines[-1].strip():
            self.lines.pop()
        self.tail = tail
        return self.detail()


# ---------------------------------------------------------------- text helpers


def fit_summary(template: str, fields: dict[str, Any], items: list[str] | None = None) -> str:
    """Fill a summary template, dropping list items ('+2 more') to stay under 140 characters."""
    values = {**fields}
    count = 0
    if items:  # the whole list first: most summaries fit it
        count = len(items)
        values["flags"] = ", ".join(items)
        text = template.format_map(values)
        if len(text) <= SUMMARY_LIMIT:
            return text
        for keep in range(count - 1, 0, -1):
            values["flags"] = ", ".join(items[:keep]) + f" +{count - keep} more"
            text = template.format_map(values)
            if len(text) <= SUMMARY_LIMIT:
                return text
    values["flags"] = f"{count} signs"
    text = template.format_map(values)
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


@lru_cache(maxsize=512)
def _template_fields(template: str) -> frozenset[str]:
    """The fields a text of cards/ names ('{score}', '{wells}'): only those are computed."""
    return frozenset(re.split(r"[.\[]", name)[0]
                     for _, name, _, _ in string.Formatter().parse(template) if name)


def _facts(evidence: Sequence[Evidence]) -> str:
    """What the chart says, in words (the references go in the card's extension)."""
    if len(evidence) == 1:
        return evidence[0].text
    return "; ".join(dict.fromkeys([e.text for e in evidence]))


def _found(result: CriterionResult) -> str:
    facts = _facts(result.answer.evidence)
    return f"- {result.criterion.label}: {facts}" if facts else f"- {result.criterion.label}"


def _ask_words(criteria: Iterable[Criterion]) -> list[str]:
    """What to ask or examine about these criteria: those that say how, in their words. The
    one wording of an ask, for a call's open criteria and for the lines worded once per copy
    of cards/ (_FamilyText, _ChecklistText)."""
    return [c.check or c.label for c in criteria if c.ask or c.check]


def _asks(results: Iterable[CriterionResult]) -> list[str]:
    """What to ask or examine: the open criteria that say how."""
    return _ask_words([r.criterion for r in results if r.answer.truth is UNKNOWN])


def _open_asks(unknown: Iterable[CriterionResult]) -> list[str]:
    """`_asks` of criteria already known to be open (a red flag's `unknown`, in order)."""
    return _ask_words([r.criterion for r in unknown])


def _with_points(criterion: Criterion) -> str:
    """'heart rate over 100 +1.5': a criterion as a score lists it."""
    return f"{criterion.check or criterion.label} {criterion.points:+g}"


def _score_lines(score: ScoreResult, kit: _Kit, facts: bool = True,
                 unknown: list[CriterionResult] | None = None) -> list[str]:
    """A score: its total, what counted (with the chart's words), what is still open.
    `unknown` is the score's open criteria when the caller has already read them."""
    lines = [f"**{score.score.short}: {score.describe()}.**"]
    met = score.met
    counted = _scored(met, kit)
    if facts:
        lines += [f"- {name}: {_facts(r.answer.evidence)}" if r.answer.evidence
                  else f"- {name}" for name, r in zip(counted, met, strict=True)]
    elif counted:
        lines.append("Counted: " + ", ".join(counted) + ".")
    if unknown is None:
        unknown = score.unknown
    if unknown:  # a paragraph of its own, never read as part of the last bullet
        lines += ["", "Unknown: " + ", ".join(_scored(unknown, kit)) + "."]
    return lines


def _scored(results: list[CriterionResult], kit: _Kit) -> list[str]:
    """The criteria as a score lists them ('cancer +1'): the content's, worded once (`kit`)."""
    scored = kit.scored
    return [scored.get(id(r.criterion)) or _with_points(r.criterion) for r in results]


# ---------------------------------------------------------------- families


def _red_flag_draft(result: RedFlagResult, assessment: Assessment, kit: _Kit,
                    rank: int) -> _Draft:
    family = kit.families[result.family.id]
    met = result.met
    labels = [r.criterion.label for r in met]
    presenting = assessment.presentation.label or "Thigh, leg or back complaint"
    summary = fit_summary(family.summary, {"presentation": presenting}, labels)
    lines = [family.heading, ""]
    if result.escalation is not None and result.escalation.met and family.escalate_reason:
        why = _facts(result.escalation.evidence)
        lines += [f"Raised to {result.indicator} {family.escalate_reason}"
                  + (f": {why}" if why else "") + ".", ""]
    lines += [_found(r) for r in met]
    lines += ["", family.action]
    if family.show_score:  # its criteria, without repeating the facts listed above
        lines += ["", *_score_lines(assessment.scores[family.show_score], kit,
                                    facts=False)]
    asks = _open_asks(result.unknown)
    if asks:  # last: the first words to go if the card must be shortened
        lines += ["", "Also ask: " + ", ".join(asks) + "."]
    evidence = evidence_of(met)
    if result.escalation is not None and result.escalation.met:
        evidence += list(result.escalation.evidence)
    return _Draft(family.key, result.indicator, summary, lines, family.source,
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


def _wells_score(wells: ScoreResult, unknown: list[CriterionResult]) -> str:
    """'2', or 'at least 2' while criteria (`unknown`: the score's, read once) are unknown."""
    return f"{wells.points:g}" if not unknown else f"at least {wells.low:g}"


def _dvt_draft(assessment: Assessment, content: Content, kit: _Kit, rank: int) -> _Draft:
    dvt = assessment.dvt
    wells = dvt.wells
    unknown = wells.unknown  # read once for the lines below
    step = kit.steps[id(dvt.step)]
    named = step.named
    fields: dict[str, Any] = {}  # what the step's texts name, nothing more
    if "points" in named:
        fields["points"] = f"{wells.points:g}"
    if "score" in named:
        fields["score"] = _wells_score(wells, unknown)
    if "unknown" in named:
        fields["unknown"] = len(unknown)
    if "wells" in named:
        fields["wells"] = wells.describe()
    if "ddimer" in named:
        fields["ddimer"] = _ddimer_words(assessment, content)
    summary = fit_summary(step.summary, fields)
    red_flag = step.red_flag or dvt.ddimer.state == "positive"
    if step.diagnosed:
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
        lines = [*_score_lines(wells, kit, unknown=unknown), "",
                 step.detail.format_map(fields)]
        evidence = evidence_of(wells.met) + dvt.ddimer.evidence  # the met results, in order
        if dvt.suspected is not None:
            lines += ["", "Suspected, not confirmed (provisional, differential or unconfirmed): "
                          + _facts(dvt.suspected.evidence) + "; the pathway applies until it "
                          "is confirmed or excluded."]
            evidence += list(dvt.suspected.evidence)
        for r in wells.pending_judgement:
            lines += ["", kit.not_counted.get(id(r.criterion)) or _not_counted(r.criterion)]
    return _Draft("dvt", step.indicator, summary, lines, content.dvt.source,
                  list(wells.score.also), evidence, step.act_within, red_flag,
                  list(step.orders), step.recommended, rank)


def _not_counted(criterion: Criterion) -> str:
    """A judgement call the score leaves to the clinician, as the DVT card states it."""
    return f"Not counted: {criterion.label} ({criterion.points:+g}), the clinician's call."


def _checklist_draft(assessment: Assessment, kit: _Kit, shown: set[str], wells_open: bool,
                     rank: int) -> _Draft | None:
    """One list of what to ask or examine, what changes management soonest first. `shown`:
    the types of the cards already drafted (a red flag's own card lists what is open)."""
    entries: list[tuple[int, int, str, str]] = []  # (act order, rank, short name, line)
    families = kit.families
    for n, fam in enumerate(assessment.red_flags):
        family = families[fam.family.id]
        if family.key in shown:
            continue  # its own card lists what is still open
        unknown = fam.unknown
        if len(unknown) == family.flags:  # every flag open, as on most charts: worded once
            line = family.all_open
        else:
            asks = _open_asks(unknown)
            line = family.checklist_head + ", ".join(asks) if asks else None
        if line is not None:
            entries.append((family.act, n, family.short, line))
    text = kit.checklist
    if wells_open:
        wells = assessment.dvt.wells
        fields: dict[str, Any] = {"score": f"{wells.points:g} so far"}
        if text.wells_counts:
            fields["unknown"] = len(wells.unknown)
        line = "- " + text.wells_line.format_map(fields)
        results = wells.results
        # the unknown criteria are those that widen the range and the judgement calls
        # (ScoreResult): when they are all of them, as on most charts, the asks are worded once
        if len(wells.unknown) + len(wells.pending_judgement) == len(results) == text.wells_items:
            line += ": " + text.wells_asks
        else:
            line += ": " + ", ".join(_asks(results))
        entries.append((ACT_ORDER["hours"], -1, "Wells DVT items", line))
    if not entries:
        return None
    entries.sort()  # by act order, then rank: no two entries share both
    names = [e[2] for e in entries]
    summary = fit_summary(text.summary, {}, names)
    lines = [text.intro, "", *(e[3] for e in entries)]
    orders = ["ddimer_test"] if wells_open and text.ddimer_order else []
    return _Draft("checklist", "info", summary, lines, text.source, [], [],
                  "now", False, orders, None, rank)


def _cause_line(result: CauseResult, text: _CauseText) -> str:
    parts = []
    if result.documented.met:
        parts.append("on record: " + _facts(result.documented.evidence))
    if result.met_supports:
        parts.append("for: " + ", ".join([r.criterion.label for r in result.met_supports]))
    if result.met_against:
        parts.append("against: " + ", ".join([r.criterion.label for r in result.met_against]))
    return f"{text.head}{result.points:g} points): " + "; ".join(parts) + "." + text.helps


def _differential_draft(assessment: Assessment, kit: _Kit, rank: int) -> _Draft:
    causes = kit.causes
    shown: list[CauseResult] = []  # the first show_at_most causes shown; the others by name
    others: list[str] = []
    from_points, at_most = kit.show_from_points, kit.show_at_most
    for r in assessment.causes:
        if len(shown) < at_most and r.shown(from_points):
            shown.append(r)
        else:
            others.append(causes[id(r.cause)].short)
    if shown:
        summary = fit_summary("Likely causes from the record: {flags}", {},
                              [r.cause.label for r in shown])
        lines = [_cause_line(r, causes[id(r.cause)]) for r in shown]
    else:
        summary = "No coded finding points to a cause yet: history and examination will decide"
        lines = []
    if others:
        lines += ["", "Not supported by the record yet (examine to decide): "
                  + ", ".join(others) + "."]
    lines += kit.method
    orders = list(dict.fromkeys(o for r in shown for o in r.cause.orders))
    evidence = [e for r in shown for e in r.documented.evidence] + evidence_of(
        [x for r in shown for x in (*r.met_supports, *r.met_against)])  # the met, in order
    source = shown[0].cause.source if shown else "nice-ng59"
    also = list(dict.fromkeys(r.cause.source for r in shown[1:] if r.cause.source != source))
    return _Draft("differential", "info", summary, lines, source, also, evidence, "days",
                  False, orders, None, rank)


# ---------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _OrderTemplate:
    """One order of cards/orders.toml as a suggestion: all but the patient's part, once."""

    label: str  # the suggestion's
    description: str  # its action's
    text: str  # the order's code, in words
    coding: tuple[dict[str, str], ...]  # and as verified codes (none: text for the EHR to map)
    priority: str
    note: str | None

    def resource(self, patient: dict[str, str], requester: dict[str, str] | None,
                 reasons: list[str]) -> dict[str, Any]:
        """The draft ServiceRequest for this patient (fresh dicts on every call: a response's
        JSON shares nothing with another's)."""
        code = ({"text": self.text, "coding": [dict(c) for c in self.coding]} if self.coding
                else {"text": self.text})
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "priority": self.priority,
            "code": code,
            "subject": dict(patient),
        }
        if requester is not None:
            resource["requester"] = dict(requester)
        if reasons:
            resource["reasonReference"] = [{"reference": r} for r in reasons]
        if self.note:
            resource["note"] = [{"text": self.note}]
        return resource


def _order_template(order: Order, content: Content) -> _OrderTemplate:
    coding = tuple(
        {"system": content.systems[c.system], "code": c.code, "display": c.display}
        for c in order.codings
    )
    template = _OrderTemplate(f"Order: {order.label}", f"Create a draft order: {order.label}",
                              order.label, coding, order.priority, order.note)
    # what the order puts in a suggestion, checked once against the wire models
    Suggestion.model_validate({"label": template.label, "actions": [{
        "type": "create", "description": template.description,
        "resource": template.resource({"reference": "Patient/example"}, None, [])}]})
    return template


_Linked = tuple[list[Link], list[dict[str, Any]]]  # the links as models, and as JSON


@dataclass(frozen=True, slots=True)
class _StepText:
    """A DVT pathway step as its card reads it, once per copy of cards/ (see _FamilyText)."""

    summary: str
    detail: str
    named: frozenset[str]  # the fields its texts name: only those are computed
    indicator: Indicator
    act_within: ActWithin
    orders: tuple[str, ...]
    recommended: str | None
    red_flag: bool  # DVT likely or diagnosed: the card counts as a red flag
    diagnosed: bool

    @classmethod
    def of(cls, step: PathwayStep) -> _StepText:
        return cls(step.summary, step.detail,
                   _template_fields(step.summary) | _template_fields(step.detail),
                   step.indicator, step.act_within, tuple(step.orders), step.recommended,
                   step.when_band in {"likely", "diagnosed"}, step.when_band == "diagnosed")


@dataclass(frozen=True, slots=True)
class _ChecklistText:
    """The checklist card's texts, read once per copy of cards/ (see _FamilyText)."""

    summary: str
    intro: str
    source: str
    wells_line: str  # template: {score}, perhaps {unknown}
    wells_counts: bool  # it names {unknown}
    wells_items: int  # the Wells DVT score's criteria
    wells_asks: str  # what to ask of them all, for a chart that answers none
    ddimer_order: bool  # cards/orders.toml has the D-dimer the Wells line proposes

    @classmethod
    def of(cls, content: Content) -> _ChecklistText:
        checklist, criteria = content.checklist, content.dvt.score.criteria
        return cls(checklist.summary, checklist.intro, checklist.source, checklist.wells_line,
                   "unknown" in _template_fields(checklist.wells_line), len(criteria),
                   ", ".join(_ask_words(criteria)),
                   "ddimer_test" in content.orders)


@dataclass(frozen=True, slots=True)
class _CauseText:
    """What the differential says of a cause whatever the chart (see _FamilyText)."""

    short: str  # its label without the parenthesis, when named among the others
    head: str  # "- **<label>** (", before its points
    helps: str  # " Would help: <first test>." or nothing

    @classmethod
    def of(cls, cause: Cause) -> _CauseText:
        return cls(_PARENTHESIS.sub("", cause.label), f"- **{cause.label}** (",
                   f" Would help: {cause.helps[0]}." if cause.helps else "")


@dataclass(frozen=True, slots=True)
class _FamilyText:
    """What a red-flag family's card and checklist line say whatever the chart, read from
    cards/ once per copy: the checklist looks at every family on every call, and a content
    model's attribute costs several times a slot's to read."""

    key: str  # the card's type, "red-flag/<id>"
    heading: str  # the card's first line: how urgent
    summary: str  # template: {presentation}, {flags}
    action: str
    escalate_reason: str | None
    show_score: str | None
    source: str
    also: list[str]
    act_within: ActWithin
    orders: tuple[str, ...]
    short: str  # the family in the checklist's summary
    act: int  # ACT_ORDER of act_within: the checklist's order
    checklist_head: str  # "- **<short>** (<when>): ", before what to ask
    flags: int  # how many flags the family has
    all_open: str | None  # its checklist line when every flag is unknown (None: nothing to ask)

    @classmethod
    def of(cls, family: RedFlagFamily) -> _FamilyText:
        head = f"- **{family.short}** ({_ACT_WORDS[family.act_within]}): "
        asks = _ask_words(family.flags)
        return cls(f"red-flag/{family.id}", f"**{family.urgency}.**", family.summary,
                   family.action, family.escalate_reason, family.show_score, family.source,
                   family.also, family.act_within, tuple(family.orders), family.short,
                   ACT_ORDER[family.act_within], head, len(family.flags),
                   head + ", ".join(asks) if asks else None)


@dataclass(frozen=True)
class _Kit:
    """What the cards of one copy of cards/ share on every call: sources, links, override
    reasons and orders, validated once through the wire models, with their JSON."""

    sources: dict[str, tuple[Source, dict[str, Any]]]
    links: dict[str, tuple[Link, dict[str, Any]]]
    override: list[OverrideReason]
    override_wire: list[dict[str, Any]]
    orders: dict[str, _OrderTemplate]
    scored: dict[int, str]  # id() of a score's criterion -> as the score lists it
    not_counted: dict[int, str]  # id() of a Wells DVT criterion -> its "Not counted" line
    steps: dict[int, _StepText]  # by id() of the DVT pathway's steps
    causes: dict[int, _CauseText]  # by id() of the differential's causes
    show_from_points: float  # the differential's
    show_at_most: int
    method: list[str]  # the differential's closing lines
    families: dict[str, _FamilyText]  # by red-flag family id
    checklist: _ChecklistText
    disclaimer: list[str]  # the lines every card ends with
    cited: dict[tuple[str, ...], _Linked] = field(default_factory=dict)

    def links_for(self, sources: tuple[str, ...]) -> _Linked:
        """The links of a card citing these sources: each source once, in order."""
        linked = self.cited.get(sources)
        if linked is None:
            unique = [self.links[s] for s in dict.fromkeys(sources)]
            linked = self.cited[sources] = ([m for m, _ in unique], [w for _, w in unique])
        return linked


def _kit_for(content: Content) -> _Kit:
    sources = {sid: Source.model_validate({"label": src.label, "url": src.url})
               for sid, src in content.sources.items()}
    links = {sid: Link.model_validate({"label": src.label, "url": src.url, "type": "absolute"})
             for sid, src in content.sources.items()}
    override = [OverrideReason(system=OVERRIDE_SYSTEM, code=r.code, display=r.display)
                for r in content.texts.override_reasons]
    if not override:
        raise ValueError("cards/texts.toml: cards need override_reasons (none are listed)")
    differential = content.differential
    return _Kit(
        sources={sid: (model, model.wire()) for sid, model in sources.items()},
        links={sid: (model, model.wire()) for sid, model in links.items()},
        override=override,
        override_wire=[r.wire() for r in override],
        orders={oid: _order_template(order, content) for oid, order in content.orders.items()},
        scored={id(c): _with_points(c) for score in (content.dvt.score, content.pe_score)
                for c in score.criteria},
        not_counted={id(c): _not_counted(c) for c in content.dvt.score.criteria},
        steps={id(step): _StepText.of(step) for step in content.dvt.steps},
        causes={id(cause): _CauseText.of(cause) for cause in differential.causes},
        show_from_points=differential.show_from_points,
        show_at_most=differential.show_at_most,
        method=["", f"_{differential.method}_"],
        families={f.id: _FamilyText.of(f) for f in content.red_flags.families},
        checklist=_ChecklistText.of(content),
        disclaimer=["", f"_{content.texts.disclaimer}_"],
    )


_kit = per_content(_kit_for)


_CARD_NAMESPACE = CARD_NAMESPACE.bytes
_REQUESTERS = {"Practitioner", "PractitionerRole"}
_REASONS = ("Condition/", "Observation/")  # the references a draft order gives as reasons
_REFERENCE = attrgetter("reference")  # of an Evidence
_sha1 = hashlib.sha1


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 4122 variant bits


def _uuid5(namespace: bytes, name: str) -> str:
    """str(uuid.uuid5(namespace, name)): the same value (a test compares them) without
    building UUID objects, which cost several times the hash."""
    return _uuid5_text(_sha1(namespace + name.encode()).hexdigest())


def _uuid5_text(h: str) -> str:
    """A name-based UUID's text from the SHA-1 hex digest of namespace and name."""
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


@dataclass(slots=True)  # made once a call: a frozen dataclass costs more to make
class _Call:
    """What every card of one call shares: who the draft orders are for and by, and the
    start of the names its cards' uuids hash (`card_uuid`)."""

    hook_instance: str
    patient: dict[str, str]
    requester: dict[str, str] | None
    named: hashlib._Hash  # SHA-1 of the namespace and "<hookInstance>/", copied for each card

    @classmethod
    def of(cls, ctx: CardContext) -> _Call:
        requester = ({"reference": ctx.user_id}
                     if ctx.user_id and ctx.user_id.split("/")[0] in _REQUESTERS else None)
        return cls(ctx.hook_instance, {"reference": f"Patient/{ctx.patient_id}"}, requester,
                   _sha1(_CARD_NAMESPACE + f"{ctx.hook_instance}/".encode()))

    def card_uuid(self, key: str) -> str:
        """_uuid5(_CARD_NAMESPACE, f"{hook_instance}/{key}"), the call's part hashed once."""
        h = self.named.copy()
        h.update(key.encode())
        return _uuid5_text(h.hexdigest())


def _suggestions(draft: _Draft, kit: _Kit, call: _Call, card_id: bytes, cited: list[str],
                 ) -> list[dict[str, Any]]:
    """The draft orders a card proposes, as JSON (their models are made from it only when
    read: `_models`; the orders' texts and shapes were checked once, by `_order_template`).
    `cited`: the resources the card cites, each once; the Conditions and Observations among
    them are the orders' reasons."""
    reasons = [r for r in cited if r.startswith(_REASONS)]
    wired = []
    for order_id in draft.orders:
        order = kit.orders[order_id]
        resource = order.resource(call.patient, call.requester, reasons)
        action = {"type": "create", "description": order.description, "resource": resource}
        suggestion_uuid = _uuid5(card_id, order_id)
        if order_id == draft.recommended:
            wired.append({"label": order.label, "uuid": suggestion_uuid, "isRecommended": True,
                          "actions": [action]})
        else:
            wired.append({"label": order.label, "uuid": suggestion_uuid, "actions": [action]})
    return wired


def _models(card: dict[str, Any], source: Source, links: list[Link],
            override: list[OverrideReason]) -> dict[str, Any]:
    """A card's fields as models, from its JSON and the kit's models of its parts (built
    directly: the JSON was checked as the card was issued, its parts once at load)."""
    suggestions = None
    if "suggestions" in card:
        suggestions = [Suggestion.checked({
            "label": s["label"], "uuid": s["uuid"], "isRecommended": s.get("isRecommended"),
            "actions": [Action.checked({"type": a["type"], "description": a["description"],
                                        "resource": a["resource"], "resourceId": None})
                        for a in s["actions"]]}) for s in card["suggestions"]]
    return {"uuid": card["uuid"], "summary": card["summary"], "detail": card["detail"],
            "indicator": card["indicator"], "source": source, "suggestions": suggestions,
            "selectionBehavior": card.get("selectionBehavior"),
            "overrideReasons": list(override), "links": list(links),
            "extension": card["extension"]}


def _card(draft: _Draft, kit: _Kit, call: _Call, detail: str,
          smart: dict[str, list[Link]]) -> Card:
    """The card as JSON; its models are made from it when first read (`Card.issued`)."""
    card_uuid = call.card_uuid(draft.key)
    source, source_wire = kit.sources[draft.source]
    links, links_wire = kit.links_for((draft.source, *draft.also))
    links_wire = list(map(dict, links_wire))  # fresh: a response shares no JSON with another
    extra = smart.get(draft.key)
    if extra:
        links_wire += [link.wire() for link in extra]
        links = links + extra
    cited = list(dict.fromkeys(map(_REFERENCE, draft.evidence)))  # each resource once
    extension = {EXTENSION_KEY: {
        "cardType": draft.key,
        "actWithin": draft.act_within,
        "redFlag": draft.red_flag,
        "evidence": cited,
    }}
    proposed: dict[str, Any] = {}  # the JSON's suggestions, when the card proposes orders
    if draft.orders:
        card_id = bytes.fromhex(card_uuid.replace("-", ""))
        proposed = {"suggestions": _suggestions(draft, kit, call, card_id, cited),
                    "selectionBehavior": "any"}
    # the JSON's keys in the order the specification lists them (and the models' fields)
    card = {"uuid": card_uuid, "summary": draft.summary, "detail": detail,
            "indicator": draft.indicator, "source": dict(source_wire), **proposed,
            "overrideReasons": list(map(dict, kit.override_wire)), "links": links_wire,
            "extension": extension}
    return _issue(card, partial(_models, card, source, links, kit.override))


# read once: an attribute of a model class is looked up through pydantic's metaclass, which
# costs about as much as a small dict copy on every card
_issue = Card.issued


def _fit_budget(drafts: list[_Draft]) -> list[str]:
    """Every detail within DETAIL_LIMIT and all within TOTAL_LIMIT: the cards read last give
    way first, so red flags keep their words. The details, as they now read."""
    details = [draft.shorten(DETAIL_LIMIT) for draft in drafts]
    for n in range(len(drafts) - 1, -1, -1):
        excess = sum(map(len, details)) - TOTAL_LIMIT
        if excess <= 0:
            break
        details[n] = drafts[n].shorten(max(len(details[n]) - excess, 200))
    return details


def draft_cards(assessment: Assessment, content: Content, ctx: CardContext,
                kit: _Kit | None = None) -> list[_Draft]:
    """The cards to send, in order, before the length budget (`_fit_budget`). `kit`: the
    content's (`_kit`), when the caller has it already."""
    if kit is None:
        kit = _kit(content)
    presentation = assessment.presentation
    present = presentation.present
    presenting = present or ctx.always
    drafts = [_red_flag_draft(r, assessment, kit, n)
              for n, r in enumerate(assessment.red_flags) if r.shown(present)]
    if presenting:
        dvt_applies = presentation.leg or ctx.always
        # an incomplete Wells score without a D-dimer is a checklist item, unless a DVT is
        # already suspected on the chart: then it keeps a card of its own
        wells_open = (dvt_applies and assessment.dvt.step.when_band == "indeterminate"
                      and assessment.dvt.ddimer.state == "none"
                      and assessment.dvt.suspected is None)
        if dvt_applies and not wells_open:
            drafts.append(_dvt_draft(assessment, content, kit, 50))
        shown = {d.key for d in drafts}
        checklist = _checklist_draft(assessment, kit, shown, wells_open, 60)
        if checklist is not None:
            drafts.append(checklist)
        drafts.append(_differential_draft(assessment, kit, 70))
    if drafts and ctx.data_gaps:
        gaps = "; ".join(ctx.data_gaps)
        gaps = gaps if len(gaps) <= 240 else gaps[:239] + "…"
        last = next((d for d in drafts if d.key == "checklist"), drafts[-1])
        last.tail += ["", f"**{content.texts.gaps_heading}:** {gaps}"]
    disclaimer = kit.disclaimer
    for draft in drafts:
        draft.tail += disclaimer
    drafts.sort(key=lambda d: (_ORDER[d.indicator], ACT_ORDER[d.act_within], d.rank))
    others = [d for d in drafts if not d.red_flag]
    for extra in others[MAX_OTHER_CARDS:]:
        drafts.remove(extra)
    return drafts


def render_cards(assessment: Assessment, content: Content, ctx: CardContext) -> list[Card]:
    """Cards in the order a clinician should act on them: by indicator, then time to act."""
    kit = _kit(content)
    smart = smart_links(assessment, content)  # cards/apps.toml
    drafts = draft_cards(assessment, content, ctx, kit)
    details = _fit_budget(drafts)
    call = _Call.of(ctx)
    return [_card(d, kit, call, detail, smart) for d, detail in zip(drafts, details, strict=True)]
