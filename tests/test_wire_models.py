"""The wire models enforce the CDS Hooks 2.0 rules on everything the service sends."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds.hooks import Action, Card, Feedback, HookRequest, Link, check_card

SOURCE = {"label": "NICE NG158"}


def test_summary_must_be_under_140_characters():
    Card(summary="x" * 139, indicator="info", source=SOURCE)
    with pytest.raises(ValidationError):
        Card(summary="x" * 140, indicator="info", source=SOURCE)


def test_indicator_is_an_enum():
    with pytest.raises(ValidationError):
        Card(summary="s", indicator="hard-stop", source=SOURCE)


def test_suggestions_need_selection_behavior():
    with pytest.raises(ValidationError):
        Card(summary="s", indicator="info", source=SOURCE, suggestions=[{"label": "x"}])


def test_at_most_one_allows_one_recommended():
    with pytest.raises(ValidationError):
        Card(summary="s", indicator="info", source=SOURCE, selectionBehavior="at-most-one",
             suggestions=[{"label": "a", "isRecommended": True},
                          {"label": "b", "isRecommended": True}])


def test_override_reasons_need_display():
    with pytest.raises(ValidationError):
        Card(summary="s", indicator="info", source=SOURCE,
             overrideReasons=[{"system": "urn:x", "code": "c"}])


def test_delete_action_names_resource_id():
    Action(type="delete", description="remove", resourceId="ServiceRequest/1")
    with pytest.raises(ValidationError):
        Action(type="delete", description="remove", resource={"resourceType": "X"})


def test_app_context_only_on_smart_links():
    with pytest.raises(ValidationError):
        Link(label="l", url="https://example.org", type="absolute", appContext="x")


def test_empty_lists_are_left_out_not_sent():
    with pytest.raises(ValidationError):
        Card(summary="s", indicator="info", source=SOURCE, links=[])


def test_feedback_rules():
    Feedback(card="c", outcome="accepted", acceptedSuggestions=[{"id": "s"}],
             outcomeTimestamp="2026-11-24T10:00:00Z")
    with pytest.raises(ValidationError):
        Feedback(card="c", outcome="overridden", acceptedSuggestions=[{"id": "s"}],
                 outcomeTimestamp="2026-11-24T10:00:00Z")
    with pytest.raises(ValidationError):
        Feedback(card="c", outcome="accepted", acceptedSuggestions=[{"id": "s"}],
                 outcomeTimestamp="yesterday")


def test_spec_example_request_parses():
    # CDS Hooks 2.0.1 §Calling a CDS Service example, adapted to patient-view
    HookRequest.model_validate({
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "http://hooks.smarthealthit.org:9080",
        "hook": "patient-view",
        "fhirAuthorization": {"access_token": "some-opaque-fhir-access-token",
                              "token_type": "Bearer", "expires_in": 300,
                              "scope": "user/Patient.read user/Observation.read",
                              "subject": "cds-service4"},
        "context": {"userId": "Practitioner/example", "patientId": "1288992",
                    "encounterId": "89284"},
        "prefetch": {"patientToGreet": {"resourceType": "Patient", "gender": "male",
                                        "birthDate": "1925-12-23", "id": "1288992"}},
    })


GOOD = {"summary": "s", "indicator": "info", "source": SOURCE}
BROKEN = {
    "summary too long": {"summary": "x" * 140},
    "summary empty": {"summary": ""},
    "indicator not in the enum": {"indicator": "hard-stop"},
    "source without label": {"source": {"url": "https://example.org"}},
    "empty links": {"links": []},
    "empty override reasons": {"overrideReasons": []},
    "suggestions without selectionBehavior": {"suggestions": [{"label": "x"}]},
    "two recommended in at-most-one": {
        "selectionBehavior": "at-most-one",
        "suggestions": [{"label": "a", "isRecommended": True},
                        {"label": "b", "isRecommended": True}]},
    "suggestion without label": {"selectionBehavior": "any", "suggestions": [{"label": ""}]},
    "create without resource": {"selectionBehavior": "any", "suggestions": [
        {"label": "a", "actions": [{"type": "create", "description": "d"}]}]},
    "delete with resource": {"selectionBehavior": "any", "suggestions": [
        {"label": "a", "actions": [{"type": "delete", "description": "d",
                                    "resource": {"resourceType": "X"}}]}]},
}


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_the_checks_on_issued_cards_refuse_what_the_models_refuse(broken):
    """The hook path checks its cards' JSON with check_card rather than the models: both
    must refuse the same broken cards."""
    card = {**GOOD, **BROKEN[broken]}
    with pytest.raises(ValidationError):
        Card.model_validate(card)
    with pytest.raises(ValueError):
        check_card(card)


def test_the_checks_on_issued_cards_accept_a_valid_card():
    card = {**GOOD, "selectionBehavior": "any", "suggestions": [
        {"label": "a", "isRecommended": True,
         "actions": [{"type": "create", "description": "d", "resource": {"a": 1}}]}]}
    Card.model_validate(card)
    assert check_card(card) is card


def test_issued_card_json_has_no_nulls():
    """The models drop None when they serialise; JSON built directly must not carry it."""
    with pytest.raises(ValueError):
        check_card({**GOOD, "detail": None})
