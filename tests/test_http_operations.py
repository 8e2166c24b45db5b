"""What an integrator and an operator see at the HTTP edge, in process: status headers
(WWW-Authenticate, Allow), Content-Type errors, an OpenAPI document without 422, docs served
without a CDN, liveness, readiness and metrics."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cds.api import create_app
from cds.auth import TrustConfig, TrustedIssuer
from cds.config import Settings
from tests.fhir import condition, hook_request


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_401_names_the_bearer_scheme(service, tmp_path: Path) -> None:
    trust = TrustConfig(public_url="http://testserver",
                        issuers=[TrustedIssuer(iss="https://ehr.example",
                                                jwks_url="https://ehr.example/jwks")])
    client = TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}"),
                                   service=service, trust=trust))
    reply = client.get("/cds-services")
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_405_lists_the_allowed_methods(client: TestClient) -> None:
    reply = client.get("/cds-services/thigh-pain")
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST"
    assert client.delete("/cds-services").headers["Allow"] == "GET"


def test_wrong_content_type_is_a_400_that_says_so(client: TestClient) -> None:
    body = '{"hook": "patient-view"}'
    for headers in ({"Content-Type": "text/plain"}, {}):
        reply = client.post("/cds-services/thigh-pain", content=body, headers=headers)
        assert reply.status_code == 400
        assert "Content-Type" in reply.json()["error"]
    reply = client.post("/cds-services/thigh-pain", json=hook_request())
    assert reply.status_code == 200


def test_openapi_lists_the_statuses_the_service_returns(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert '"422"' not in str(document).replace("'", '"')
    assert "HTTPValidationError" not in document["components"]["schemas"]
    hook = document["paths"]["/cds-services/{service_id}"]["post"]["responses"]
    assert set(hook) == {"200", "400", "401", "404", "412", "413"}
    assert hook["412"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    assert "401" in document["paths"]["/cds-services"]["get"]["responses"]
    assert "503" in document["paths"]["/health/ready"]["get"]["responses"]


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        scripts = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert scripts, html
        for url in scripts:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url


def test_docs_can_be_turned_off(service, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}", docs=False)
    client = TestClient(create_app(settings, service=service))
    for page in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(page).status_code == 404
    assert client.get("/health").status_code == 200


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/health/live").json()["status"] == "ok"
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["store"] == "ok"


class BrokenStore:
    """A store whose database is gone: every use fails."""

    def ping(self) -> None:
        raise OSError("database disk image is malformed")

    record_issued = add = report = remember_token = ping

    def start(self) -> None:  # the background writer and pruning: nothing to do
        return None

    close = start


def test_readiness_fails_while_the_store_is_unusable(service, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    client = TestClient(create_app(Settings(database_url=url), service=service,
                                   store=BrokenStore()))  # type: ignore[arg-type]
    reply = client.get("/health/ready")
    assert reply.status_code == 503
    assert "malformed" in reply.json()["store"]
    assert client.get("/health/live").status_code == 200


def test_not_ready_while_the_unit_registry_is_being_built(client: TestClient,
                                                           monkeypatch) -> None:
    """For its first seconds a process builds the UCUM registry; a load balancer waits."""
    import cds.units

    monkeypatch.setattr(cds.units, "_registry", None)
    reply = client.get("/health/ready")
    assert reply.status_code == 503 and reply.json()["units"] == "loading"
    assert client.get("/health/live").status_code == 200
    monkeypatch.undo()
    assert client.get("/health/ready").json()["units"] == "ok"


def test_metrics_count_requests_cards_and_feedback(client: TestClient) -> None:
    hook = "/cds-services/{service_id}"
    before = {
        "ok": metric(client, "cds_requests_total", endpoint=hook, status="200"),
        "bad": metric(client, "cds_requests_total", endpoint=hook, status="400"),
        "critical": metric(client, "cds_cards_total", indicator="critical"),
        "overridden": metric(client, "cds_feedback_total", outcome="overridden"),
    }
    cards = client.post("/cds-services/thigh-pain",
                        json=hook_request(condition("urinary_retention"))).json()["cards"]
    client.post("/cds-services/thigh-pain", content="{", headers={
        "Content-Type": "application/json"})
    client.post("/cds-services/thigh-pain/feedback", json={"feedback": [
        {"card": cards[0]["uuid"], "outcome": "overridden",
         "outcomeTimestamp": "2026-11-24T10:00:00Z"}]})
    assert metric(client, "cds_requests_total", endpoint=hook, status="200") == before["ok"] + 1
    assert metric(client, "cds_requests_total", endpoint=hook, status="400") == before["bad"] + 1
    assert metric(client, "cds_cards_total", indicator="critical") == before["critical"] + sum(
        c["indicator"] == "critical" for c in cards)
    assert metric(client, "cds_feedback_total", outcome="overridden") == before[
        "overridden"] + 1
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_unknown_service_ids_do_not_become_metric_labels(client: TestClient) -> None:
    client.post("/cds-services/attacker-chosen-name", json=hook_request())
    assert "attacker-chosen-name" not in client.get("/metrics").text


class FullDisk:
    def labels(self, *_: str) -> None:
        raise OSError(28, "No space left on device")


def test_metrics_that_cannot_be_written_never_fail_a_hook_call(client: TestClient,
                                                              monkeypatch, caplog) -> None:
    import cds.api_metrics

    monkeypatch.setattr(cds.api_metrics, "CARDS", FullDisk())
    monkeypatch.setattr(cds.api_metrics, "REQUESTS", FullDisk())
    reply = client.post("/cds-services/thigh-pain",
                        json=hook_request(condition("urinary_retention")))
    assert reply.status_code == 200 and reply.json()["cards"]
    assert "metrics not recorded" in caplog.text
