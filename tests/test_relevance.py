"""Quiet unless it matters: cards only for a current presentation or a standalone red flag.

Sources: NICE CKS sciatica and GIRFT 2023 (cauda equina features, new within 14 days), NICE
NG158 (signs of PE; Wells applies to a symptomatic leg), AHCPR 1994 (fever or a cancer history
are red flags together with back pain), cards/rules/presentation.toml (the window).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from cds.hooks import HookRequest
from cds.service import ThighPainService
from tests.fhir import AS_OF, condition, hook_request, observation


def _types(response) -> list[str]:
    return [c.extension["thigh-pain-cds"]["cardType"] for c in response.cards]


def test_no_presentation_and_no_red_flag_means_no_cards(call):
    assert call(hook_request(observation("heart_rate", 80, "/min"), presenting=False)).cards == []


def test_fever_or_a_cancer_history_without_pain_says_nothing(call):
    fever = observation("body_temperature", 38.9, "Cel")
    cancer = condition("cancer_history", clinical="active", onset_days=2000)
    assert call(hook_request(fever, cancer, presenting=False)).cards == []
    with_pain = _types(call(hook_request(fever, cancer)))
    assert "red-flag/infection" in with_pain and "red-flag/cancer" in with_pain


def test_standalone_red_flags_speak_without_a_presentation(call):
    ces = call(hook_request(condition("urinary_retention"), presenting=False))
    assert _types(ces) == ["red-flag/cauda_equina"]
    assert ces.cards[0].indicator == "critical"
    pe = call(hook_request(condition("dyspnea"), presenting=False))
    assert _types(pe) == ["red-flag/pulmonary_embolism"]
    deficit = call(hook_request(condition("foot_drop", code={
        "system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M21.371",
        "display": "Foot drop, right foot"}), presenting=False))
    assert _types(deficit) == ["red-flag/neurological_deficit"]


def test_non_specific_signs_alone_stay_quiet(call):
    """A fast heart rate, incontinence or inability to walk without a fall, on their own."""
    quiet = hook_request(observation("heart_rate", 118, "/min"),
                         condition("urinary_incontinence"),
                         condition("unable_to_bear_weight"), presenting=False)
    assert call(quiet).cards == []


def test_unable_to_bear_weight_after_a_fall_speaks_on_its_own(call):
    response = call(hook_request(condition("unable_to_bear_weight"), condition("fall"),
                                 presenting=False))
    assert _types(response) == ["red-flag/fracture"]


def test_an_old_active_complaint_is_history_not_a_presentation(call):
    old = condition("thigh_pain", onset_days=200)
    assert call(hook_request(old, presenting=False)).cards == []
    old["recordedDate"] = "2026-11-23T10:00:00+00:00"  # written down again yesterday
    assert call(hook_request(old, presenting=False)).cards != []


def test_encounter_reason_is_the_presentation_on_encounter_start(service: ThighPainService):
    reason = {"coding": [{"system": "http://snomed.info/sct", "code": "279043006",
                          "display": "Pain in buttock (finding)"}]}
    encounter = {"resourceType": "Encounter", "id": "enc-1", "status": "in-progress",
                 "class": {"code": "AMB"}, "subject": {"reference": "Patient/pt-1"},
                 "reasonCode": [reason]}
    request = hook_request(hook="encounter-start", presenting=False)
    request["prefetch"]["encounter"] = encounter
    response, _ = service.call("thigh-pain-encounter", HookRequest.model_validate(request),
                               as_of=AS_OF)
    assert "checklist" in _types(response)
    assert response.cards[0].summary.startswith("Ask or examine")
    encounter.pop("reasonCode")
    response, _ = service.call("thigh-pain-encounter", HookRequest.model_validate(request),
                               as_of=AS_OF)
    assert response.cards == []


def test_encounter_reason_reference_to_an_old_condition_counts(service: ThighPainService):
    old = condition("low_back_pain", onset_days=400, rid="c-old-lbp")
    request = hook_request(old, hook="encounter-start", presenting=False)
    request["prefetch"]["encounter"] = {
        "resourceType": "Encounter", "id": "enc-1", "status": "in-progress",
        "class": {"code": "AMB"}, "reasonReference": [{"reference": "Condition/c-old-lbp"}]}
    response, _ = service.call("thigh-pain-encounter", HookRequest.model_validate(request),
                               as_of=AS_OF)
    assert response.cards


def test_encounter_start_asks_for_its_encounter(service: ThighPainService):
    services = {s.id: s for s in service.discovery().services}
    assert services["thigh-pain-encounter"].prefetch["encounter"] == (
        "Encounter/{{context.encounterId}}")
    assert "encounter" not in services["thigh-pain"].prefetch
    assert "Quiet otherwise" in services["thigh-pain"].description


def test_dvt_card_counts_as_a_red_flag_when_likely(call):
    response = call(hook_request(condition("active_cancer", onset_days=100),
                                 condition("leg_swelling")))
    dvt = next(c for c in response.cards if c.extension["thigh-pain-cds"]["cardType"] == "dvt")
    assert dvt.extension["thigh-pain-cds"]["redFlag"] is True
    assert dvt.extension["thigh-pain-cds"]["actWithin"] == "hours"


def test_wells_applies_to_a_leg_complaint_not_to_back_pain_alone(call):
    back = _types(call(hook_request(condition("low_back_pain"), presenting=False)))
    assert "checklist" in back
    checklist = call(hook_request(condition("low_back_pain"), presenting=False)).cards
    text = next(c.detail for c in checklist
                if c.extension["thigh-pain-cds"]["cardType"] == "checklist")
    assert "Wells DVT" not in text
    assert "Wells DVT" in next(c.detail for c in call(hook_request()).cards
                               if c.extension["thigh-pain-cds"]["cardType"] == "checklist")


def test_a_site_can_answer_always(tmp_path, store):
    from cds.api import create_app
    from cds.config import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.sqlite3'}", always_answer=True)
    app = create_app(settings, store=store, as_of=AS_OF)
    with TestClient(app) as client:
        reply = client.post("/cds-services/thigh-pain", json=hook_request(presenting=False))
    cards = reply.json()["cards"]
    assert {c["extension"]["thigh-pain-cds"]["cardType"] for c in cards} >= {
        "checklist", "differential"}
