"""Fuzz the HTTP API from its own OpenAPI document: no input may cause a 5xx or a response
that breaks the documented schema. Bounded in examples so the suite stays fast."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from cds.api import create_app
from cds.config import Settings
from tests.fhir import AS_OF

pytestmark = pytest.mark.filterwarnings("ignore")

app = create_app(Settings(database_url=f"sqlite:///{Path(tempfile.mkdtemp()) / 'fuzz.db'}"),
                 as_of=AS_OF)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_api_never_fails_with_5xx(case):
    response = case.call()
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=(schemathesis.checks.not_a_server_error,))
