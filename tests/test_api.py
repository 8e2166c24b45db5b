"""The HTTP contract an EHR relies on: discovery, hook calls, errors, feedback, health."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from cds.hooks import DiscoveryResponse, HookResponse
from tests.fhir import condition, hook_request, observation


def test_discovery_lists_both_hooks_with_prefetch_templates(client: TestClient) -> None:
    reply = client.get("/cds-services")
    assert reply.status_code == 200
    body = DiscoveryResponse.model_validate(reply.json())
    hooks = {s.id: s.hook for s in body.services}
    assert hooks == {"thigh-pain": "patient-view", "thigh-pain-encounter": "encounter-start"}
    service = body.services[0]
    assert service.prefetch is not None
    assert service.prefetch["patient"] == "Patient/{{context.patientId}}"
    assert "http://loinc.org|48065-7" in service.prefetch["observations"]
    assert service.description and service.title
    assert "null" not in reply.text


def test_hook_call_returns_valid_cards(client: TestClient) -> None:
    request = hook_request(condition("dvt", clinical="resolved", onset_days=400),
                           condition("leg_swelling"))
    reply = client.post("/cds-services/thigh-pain", json=request)
    assert reply.status_code == 200, reply.text
    body = HookResponse.model_validate(reply.json())
    assert body.cards
    assert all(len(card.summary) < 140 for card in body.cards)
    assert "null" not in reply.text


def test_encounter_start_service_answers_too(client: TestClient) -> None:
    request = hook_request(condition("leg_swelling"), hook="encounter-start")
    reply = client.post("/cds-services/thigh-pain-encounter", json=request)
    assert reply.status_code == 200, reply.text
    assert HookResponse.model_validate(reply.json()).cards


def test_unknown_service_is_404_with_json(client: TestClient) -> None:
    reply = client.post("/cds-services/nope", json=hook_request())
    assert reply.status_code == 404
    assert "nope" in reply.json()["error"]


def test_malformed_json_is_400(client: TestClient) -> None:
    reply = client.post("/cds-services/thigh-pain", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "malformed JSON"


def test_request_breaking_the_spec_is_400_saying_what(client: TestClient) -> None:
    request = hook_request()
    request["hookInstance"] = "not-a-uuid"
    del request["context"]["userId"]
    reply = client.post("/cds-services/thigh-pain", json=request)
    assert reply.status_code == 400
    details = " ".join(reply.json()["details"])
    assert "hookInstance" in details and "context.userId" in details


def test_patient_id_must_be_bare(client: TestClient) -> None:
    request = hook_request()
    request["context"]["patientId"] = "Patient/123"
    reply = client.post("/cds-services/thigh-pain", json=request)
    assert reply.status_code == 400
    assert "bare FHIR id" in reply.text


def test_wrong_hook_for_service_is_400(client: TestClient) -> None:
    reply = client.post("/cds-services/thigh-pain", json=hook_request(hook="order-sign"))
    assert reply.status_code == 400
    assert "patient-view" in reply.json()["error"]


def test_token_without_server_is_400(client: TestClient) -> None:
    request = hook_request(fhirAuthorization={
        "access_token": "secret", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "cds"})
    reply = client.post("/cds-services/thigh-pain", json=request)
    assert reply.status_code == 400
    assert "fhirServer" in reply.text
    assert "secret" not in reply.text


def test_missing_prefetch_without_server_is_412(client: TestClient) -> None:
    request = hook_request()
    del request["prefetch"]["observations"]
    reply = client.post("/cds-services/thigh-pain", json=request)
    assert reply.status_code == 412
    assert "observations" in reply.json()["error"]


def test_prefetch_that_is_not_a_bundle_is_reported_not_fatal(client: TestClient) -> None:
    request = hook_request(observation("heart_rate", 80, "/min"))
    request["prefetch"]["procedures"] = {"resourceType": "Patient", "id": "x"}
    reply = client.post("/cds-services/thigh-pain", json=request)
    assert reply.status_code == 200
    assert "expected a Bundle of Procedure" in reply.text


def test_oversized_body_is_413(client: TestClient) -> None:
    reply = client.post("/cds-services/thigh-pain", content=b"x",
                        headers={"Content-Type": "application/json",
                                 "Content-Length": str(10**9)})
    assert reply.status_code == 413


def test_feedback_is_accepted_and_idempotent(client: TestClient) -> None:
    cards = client.post("/cds-services/thigh-pain", json=hook_request()).json()["cards"]
    card = next(c for c in cards if c.get("suggestions"))
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-24T12:05:00Z",
    }
    first = client.post("/cds-services/thigh-pain/feedback", json={"feedback": [item]})
    again = client.post("/cds-services/thigh-pain/feedback", json={"feedback": [item]})
    assert first.status_code == 200 and first.json() == {"received": 1, "new": 1}
    assert again.json() == {"received": 1, "new": 0}


def test_feedback_overridden_with_reason(client: TestClient) -> None:
    item = {
        "card": str(uuid.uuid4()),
        "outcome": "overridden",
        "overrideReason": {"reason": {"system": "urn:thigh-pain-cds:override-reason",
                                      "code": "not-applicable"},
                           "userComment": "seen yesterday"},
        "outcomeTimestamp": "2026-11-24T12:05:00Z",
    }
    reply = client.post("/cds-services/thigh-pain/feedback", json={"feedback": [item]})
    assert reply.status_code == 200


def test_feedback_accepted_without_suggestions_is_400(client: TestClient) -> None:
    item = {"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-11-24T12:05:00Z"}
    reply = client.post("/cds-services/thigh-pain/feedback", json={"feedback": [item]})
    assert reply.status_code == 400


def test_health(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"


def test_cors_preflight_allows_authorization_header(client: TestClient) -> None:
    reply = client.options(
        "/cds-services/thigh-pain",
        headers={"Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert reply.status_code == 200
    assert "authorization" in reply.headers["access-control-allow-headers"].lower()
