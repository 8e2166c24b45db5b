"""The floors the HTTP benchmark compares the hook with (cds.bench.apps): the bare endpoint as
FastAPI comes, and the same endpoint with the collector settings the service gives itself."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from cds import heap
from cds.bench.apps import bare_app, settled_bare_app


def _post(client: TestClient) -> None:
    reply = client.post("/cds-services/thigh-pain", content=b'{"hook": "patient-view"}',
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 200
    assert reply.json() == {"cards": []}


def test_settled_floor_runs_with_the_services_collector_settings() -> None:
    before = gc.get_threshold()
    with TestClient(settled_bare_app()) as client:
        _post(client)
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0  # what start-up loaded is out of the passes
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_bare_floor_leaves_the_collector_as_it_comes() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with TestClient(bare_app()) as client:
        _post(client)
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == frozen
