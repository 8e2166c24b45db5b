"""What a clinician reads: order, wording limits, evidence, sources, orders as FHIR."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import uuid
from pathlib import Path

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds.cards import CARD_NAMESPACE, CardContext, _Call, _uuid5
from cds.hooks import Card, HookRequest, HookResponse, Link
from cds.smart.apps import public_base
from tests.fhir import AS_OF, condition, hook_request, observation

REQUESTS = sorted((Path(__file__).resolve().parent.parent / "examples/requests").glob("*.json"))


def _ces_and_dvt_request() -> dict:
    return hook_request(
        condition("urinary_retention", onset_days=1, rid="c-ret"),
        condition("active_cancer", onset_days=100, rid="c-ca"),
        condition("leg_swelling", onset_days=1, rid="c-swell"),
        observation("heart_rate", 112, "/min", rid="o-hr"),
    )


def test_cards_come_critical_first_then_warning_then_info(call):
    cards = call(_ces_and_dvt_request()).cards
    order = {"critical": 0, "warning": 1, "info": 2}
    ranks = [order[c.indicator] for c in cards]
    assert ranks == sorted(ranks)
    assert cards[0].indicator == "critical"


def test_one_card_per_family_and_no_duplicates(call):
    cards = call(_ces_and_dvt_request()).cards
    types = [c.extension["thigh-pain-cds"]["cardType"] for c in cards]
    assert len(types) == len(set(types))
    assert len({c.summary for c in cards}) == len(cards)


def test_cards_cite_the_resources_they_rest_on_for_machines_not_in_prose(call):
    cards = call(_ces_and_dvt_request()).cards
    ces = next(c for c in cards if "cauda equina" in c.summary.lower())
    assert ces.extension["thigh-pain-cds"]["evidence"] == ["Condition/c-ret"]
    assert "Retention of urine" in ces.detail  # the chart's words, not its ids
    dvt = next(c for c in cards if c.extension["thigh-pain-cds"]["cardType"] == "dvt")
    assert {"Condition/c-ca", "Condition/c-swell"} <= set(
        dvt.extension["thigh-pain-cds"]["evidence"])
    for card in cards:
        assert "Condition/" not in card.detail and "Observation/" not in card.detail


def test_every_card_names_a_source_with_a_link(call):
    for card in call(_ces_and_dvt_request()).cards:
        assert card.source.label and card.source.url
        assert card.links and all(link.type == "absolute" for link in card.links)


def test_card_uuids_are_stable_for_a_hook_instance_and_unique(call):
    request = _ces_and_dvt_request()
    first = [c.uuid for c in call(request).cards]
    again = [c.uuid for c in call(request).cards]
    assert first == again and len(set(first)) == len(first)


def test_suggestions_are_valid_draft_service_requests(call):
    cards = call(_ces_and_dvt_request()).cards
    actions = [a for c in cards for s in c.suggestions or () for a in s.actions or ()]
    assert actions
    for action in actions:
        request = ServiceRequest.model_validate(action.resource)
        assert request.status == "draft"
        assert request.subject.reference == "Patient/pt-1"
        assert request.requester.reference == "Practitioner/dr-1"
        # a verified code, or plain text for the EHR to map: never an unchecked code
        assert request.code.coding or request.code.text


def test_dismiss_reasons_are_offered(call):
    card = call(_ces_and_dvt_request()).cards[0]
    assert card.overrideReasons and all(r.display for r in card.overrideReasons)


def test_wording_proposes_and_carries_the_disclaimer(call):
    for card in call(_ces_and_dvt_request()).cards:
        assert "does not diagnose" in card.detail


def test_presenting_chart_without_findings_gets_a_checklist_never_all_clear(call):
    cards = call(hook_request()).cards  # thigh pain, nothing else recorded
    summaries = " ".join(c.summary.lower() for c in cards)
    assert "no red flags" not in summaries
    checklist = next(c for c in cards if c.extension["thigh-pain-cds"]["cardType"]
                     == "checklist")
    assert "**not** negative" in checklist.detail
    assert "Wells DVT" in checklist.detail and "Cauda equina" in checklist.detail
    # the incomplete Wells score is part of the checklist, not a card of its own
    assert not any(c.extension["thigh-pain-cds"]["cardType"] == "dvt" for c in cards)


def test_pe_card_shows_the_wells_pe_score_it_names(call):
    cards = call(hook_request(condition("dyspnea", onset_days=1),
                              observation("heart_rate", 120, "/min"))).cards
    pe = next(c for c in cards if "pulmonary embolism" in c.summary.lower())
    assert "**Wells PE:" in pe.detail
    assert "heart rate over 100 +1.5" in pe.detail
    assert "Unknown: DVT signs +3, PE most likely +3" in pe.detail


@pytest.mark.parametrize("base", [None, "https://cds.example.org/"])
@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_every_example_card_is_sent_as_the_wire_models_make_it(call, path, base):
    """The cards are built as JSON directly; the `call` fixture validates that JSON with the
    models and compares it with the models' own serialisation of the cards, here for every
    example, with and without the SMART links the public address brings."""
    token = public_base.set(base)
    try:
        cards = call(json.loads(path.read_text())).cards
    finally:
        public_base.reset(token)
    if base is not None and any(c.extension["thigh-pain-cds"]["cardType"] in {"dvt", "checklist"}
                                for c in cards):
        assert any(link.type == "smart" for c in cards for link in c.links or ())


def test_card_and_suggestion_ids_are_name_based_uuid5s():
    names = [f"{n}/red-flag/cauda_equina" for n in range(100)] + ["é/ü"]
    variants = set()
    for name in names:
        text = _uuid5(CARD_NAMESPACE.bytes, name)
        variants.add(hashlib.sha1(CARD_NAMESPACE.bytes + name.encode()).hexdigest()[16])
        assert text == str(uuid.uuid5(CARD_NAMESPACE, name))
        card_id = uuid.UUID(text)
        assert _uuid5(card_id.bytes, "ctpa") == str(uuid.uuid5(card_id, "ctpa"))
    assert len(variants) == 16  # every value of the nibble that carries the variant bits
    call = _Call.of(CardContext("d1b0c8a6-0b6e-4f55-9a32-2f1f0c6a7e11", "pt-1"))
    for key in ("red-flag/cauda_equina", "dvt", "checklist", "é/ü"):
        assert call.card_uuid(key) == str(uuid.uuid5(
            CARD_NAMESPACE, f"d1b0c8a6-0b6e-4f55-9a32-2f1f0c6a7e11/{key}"))


def test_a_card_changed_after_it_was_issued_sends_what_it_now_says(call):
    card = call(_ces_and_dvt_request()).cards[0]
    link = Link(label="More", url="https://example.org/more", type="absolute")
    card.links = [*(card.links or []), link]
    assert card.wire()["links"][-1] == {"label": "More", "url": "https://example.org/more",
                                        "type": "absolute"}



_READINGS = {  # the ways code may read a card as models
    "fields": lambda c: [getattr(c, name) for name in Card.model_fields],
    "dump": lambda c: c.model_dump(),
    "dump as JSON": lambda c: c.model_dump_json(),
    "dump in a response": lambda c: HookResponse(cards=[c]).model_dump(),
    "repr": repr,
    "iteration": lambda c: list(c),
    "comparison": lambda c: c == c.model_copy(),
    "copy": lambda c: copy.copy(c).model_dump(),
    "deep copy": lambda c: copy.deepcopy(c).model_dump(),
    "model copy": lambda c: c.model_copy(update={"detail": "x"}).model_dump(),
    "pickle": lambda c: pickle.loads(pickle.dumps(c)).model_dump(),
    "extra": lambda c: c.model_extra,
}


@pytest.mark.parametrize("reading", list(_READINGS))
def test_an_issued_card_reads_as_the_models_of_its_json_however_it_is_first_read(
        service, reading):
    """A card's models are made when first read (the HTTP path reads only its JSON and own
    values): whatever reads them first sees what validating the card's JSON gives, with
    every field set, as before."""
    request = HookRequest.model_validate(_ces_and_dvt_request())
    token = public_base.set("https://cds.example.org/")  # SMART links too
    try:
        cards = service.call("thigh-pain", request, as_of=AS_OF)[0].cards
    finally:
        public_base.reset(token)
    sent = [card.wire() for card in cards]
    assert any("suggestions" in c for c in sent)
    assert any(link["type"] == "smart" for c in sent for link in c["links"])
    for card, wire in zip(cards, sent, strict=True):
        validated = Card.model_validate(wire)
        assert _READINGS[reading](card) == _READINGS[reading](validated)
        assert card.model_fields_set == set(Card.model_fields)
        assert card.model_dump(mode="json", exclude_none=True, by_alias=True) == wire
        assert card.wire() is wire
