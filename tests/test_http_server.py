"""A real uvicorn server on loopback, called the way an EHR would (requests over TCP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cds.api import create_app
from cds.config import Settings
from cds.fhir_server import serve_resources
from cds.hooks import HookResponse
from tests.fhir import AS_OF, PATIENT_ID, condition, hook_request, observation, patient
from tests.net import serving


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = Path(tmp_path_factory.mktemp("db")) / "feedback.sqlite3"
    app = create_app(Settings(database_url=f"sqlite:///{db}"), as_of=AS_OF)
    with serving(app) as base:
        yield base


def test_discovery_and_hook_over_tcp(base_url: str) -> None:
    services = requests.get(f"{base_url}/cds-services", timeout=5).json()["services"]
    assert {s["id"] for s in services} == {"thigh-pain", "thigh-pain-encounter"}
    request = hook_request(condition("urinary_retention", onset_days=1))
    reply = requests.post(f"{base_url}/cds-services/thigh-pain", json=request, timeout=10)
    assert reply.status_code == 200
    cards = HookResponse.model_validate(reply.json()).cards
    assert cards[0].indicator == "critical"


def test_service_fetches_from_a_real_fhir_server(base_url: str) -> None:
    resources = [patient(), condition("urinary_retention", onset_days=1)]
    resources += [observation("heart_rate", 70 + i % 5, "/min", days=i) for i in range(120)]
    with serve_resources(resources, page_size=25, token="tok") as fhir:
        request = hook_request(fhirServer=fhir, fhirAuthorization={
            "access_token": "tok", "token_type": "Bearer", "expires_in": 60,
            "scope": "patient/*.read", "subject": "cds", "patient": PATIENT_ID})
        request.pop("prefetch")
        reply = requests.post(f"{base_url}/cds-services/thigh-pain", json=request, timeout=20)
    assert reply.status_code == 200, reply.text
    cards = reply.json()["cards"]
    assert cards[0]["indicator"] == "critical"
    assert "Could not be assessed" not in cards[0]["detail"]


def test_wrong_token_at_the_fhir_server_is_412_naming_it(base_url: str) -> None:
    """Without prefetch, required data the FHIR server refuses to give is a 412 (CDS Hooks)."""
    with serve_resources([patient()], token="right") as fhir:
        request = hook_request(fhirServer=fhir, fhirAuthorization={
            "access_token": "wrong", "token_type": "Bearer", "expires_in": 60,
            "scope": "patient/*.read", "subject": "cds"})
        # the patient and the presenting complaint were prefetched; the rest is fetched
        request["prefetch"] = {k: v for k, v in request["prefetch"].items()
                               if k in {"patient", "conditions"}}
        reply = requests.post(f"{base_url}/cds-services/thigh-pain", json=request, timeout=20)
    assert reply.status_code == 412
    assert "observations (FHIR server answered HTTP 401)" in reply.json()["error"]
