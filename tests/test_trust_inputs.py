"""Bad input and privacy at the HTTP edge: streamed oversize bodies, deep JSON, no PHI in
logs, the feedback report."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cds.api import create_app
from cds.cli import app as cli
from cds.config import Settings
from tests.fhir import condition, hook_request, patient


def test_streamed_body_over_the_limit_is_413(service, tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}", max_body_bytes=1000)
    client = TestClient(create_app(settings, service=service))

    def chunks():
        for _ in range(10):
            yield b" " * 500

    reply = client.post("/cds-services/thigh-pain", content=chunks(),
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 413


def test_streamed_body_under_the_limit_gets_the_same_cards_as_one_sent_whole(
        client: TestClient):
    body = json.dumps(hook_request(condition("urinary_retention"))).encode()

    def chunks():
        for start in range(0, len(body), 300):
            yield body[start:start + 300]

    whole = client.post("/cds-services/thigh-pain", content=body,
                        headers={"Content-Type": "application/json"})
    streamed = client.post("/cds-services/thigh-pain", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert whole.status_code == streamed.status_code == 200
    assert [c["summary"] for c in streamed.json()["cards"]] == \
        [c["summary"] for c in whole.json()["cards"]]
    assert streamed.json()["cards"][0]["indicator"] == "critical"


def test_deeply_nested_json_is_400_not_500(client: TestClient):
    body = "[" * 50_000 + "]" * 50_000
    reply = client.post("/cds-services/thigh-pain", content=body,
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 400


def test_unknown_resource_types_in_prefetch_are_ignored(client: TestClient):
    request = hook_request(condition("sciatica"))
    request["prefetch"]["conditions"]["entry"].append(
        {"resource": {"resourceType": "Spaceship", "id": "x"}})
    assert client.post("/cds-services/thigh-pain", json=request).status_code == 200


def test_logs_carry_no_patient_data_or_tokens(client: TestClient, caplog):
    caplog.set_level(logging.INFO)
    request = hook_request(condition("urinary_retention", rid="cond-secret"),
                           pt=patient(birth="1944-02-29", pid="pt-1"))
    request["prefetch"]["patient"]["name"] = [{"family": "Secretname"}]
    client.post("/cds-services/thigh-pain", json=request)
    assert request["hookInstance"] in caplog.text
    for phi in ("pt-1", "1944-02-29", "Secretname", "cond-secret", "urinary"):
        assert phi not in caplog.text


def test_feedback_for_unknown_service_is_404(client: TestClient):
    item = {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}
    reply = client.post("/cds-services/nope/feedback", json={"feedback": [item]})
    assert reply.status_code == 404


def test_feedback_report_gives_rates_per_card_type(client: TestClient, tmp_path):
    request = hook_request(condition("active_cancer", onset_days=100),
                           condition("leg_swelling", onset_days=1))
    cards = client.post("/cds-services/thigh-pain", json=request).json()["cards"]
    dvt = next(c for c in cards if c["extension"]["thigh-pain-cds"]["cardType"] == "dvt")
    feedback = [
        {"card": dvt["uuid"], "outcome": "accepted",
         "acceptedSuggestions": [{"id": dvt["suggestions"][0]["uuid"]}],
         "outcomeTimestamp": "2026-11-24T10:00:00Z"},
        {"card": cards[-1]["uuid"], "outcome": "overridden",
         "outcomeTimestamp": "2026-11-24T10:01:00Z"},
    ]
    assert client.post("/cds-services/thigh-pain/feedback",
                       json={"feedback": feedback}).status_code == 200
    client.app.state.store.flush()  # issued cards are recorded in the background
    db = client.app.state.store.path
    result = CliRunner().invoke(cli, ["feedback", "--database-url", f"sqlite:///{db}",
                                      "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["card_type"]: r for r in json.loads(result.output)}
    assert rows["dvt"]["accepted"] == 1 and rows["dvt"]["overridden"] == 0
    assert rows["differential"]["overridden"] == 1
