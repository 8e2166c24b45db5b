from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.api import create_app
from cds.config import Settings
from cds.content import Content, default_content
from cds.hooks import HookRequest, HookResponse
from cds.reasoning.assessment import Assessment, assess
from cds.record import RecordBuilder
from cds.service import ThighPainService
from cds.store import Store
from cds.terminology import Terminology
from cds.units import convert
from tests.fhir import AS_OF, PATIENT_ID
from tests.postgres import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def content() -> Content:
    return default_content()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback, started the first time a test asks for it."""
    yield from postgres_server()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A new, empty PostgreSQL database."""
    return postgres.fresh_database()


@pytest.fixture(scope="session")
def service(content: Content) -> ThighPainService:
    built = ThighPainService(content)
    convert(1.0, "mg/L", "g/L")  # wait for the unit registry: the service is ready from here
    return built


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'feedback.sqlite3'}")


@pytest.fixture
def client(service: ThighPainService, store: Store, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'feedback.sqlite3'}")
    app = create_app(settings, service=service, store=store, as_of=AS_OF)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def call(service: ThighPainService):
    """Run a hook request (dict) in process at the pinned date; returns the response."""

    def run(request: dict[str, Any], service_id: str = "thigh-pain") -> HookResponse:
        response, _ = service.call(service_id, HookRequest.model_validate(request), as_of=AS_OF)
        wire = response.wire()
        # what is sent passes the wire models, and is exactly what they make of the cards
        assert HookResponse.model_validate(wire).wire() == wire
        assert [card.model_dump(mode="json", exclude_none=True, by_alias=True)
                for card in response.cards] == wire["cards"]
        return response

    return run


@pytest.fixture
def assessment_of(content: Content):
    """Assess raw resources directly (no prefetch), at the pinned date."""
    builder = RecordBuilder(content, Terminology.from_content(content))

    def run(*resources: dict[str, Any], missing: dict[str, str] | None = None) -> Assessment:
        by_kind: dict[str, list[dict[str, Any]]] = {
            "Patient": [], "Condition": [], "Observation": [], "Procedure": [],
            "MedicationRequest": []}
        for r in resources:
            by_kind.setdefault(r["resourceType"], []).append(r)
        if not by_kind["Patient"]:
            by_kind["Patient"].append({"resourceType": "Patient", "id": PATIENT_ID,
                                       "birthDate": "1970-05-01", "gender": "female"})
        record = builder.build(PATIENT_ID, by_kind, missing, AS_OF)
        return assess(content, record, always=True)  # every rule, presentation or not

    return run
