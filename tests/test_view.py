"""The card view over HTTP (no browser): when it is on, what it renders, how it fails.
(Clicking through it in Chromium: tests/browser/test_view.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cds.api import create_app
from cds.auth import TrustConfig, TrustedIssuer
from cds.config import Settings
from cds.feedback import FeedbackStore
from cds.service import ThighPainService
from cds.view.examples import scenarios
from cds.view.markdown import render_markdown
from tests.fhir import AS_OF

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TRUST = TrustConfig(public_url="http://testserver",
                    issuers=[TrustedIssuer(iss="https://ehr.example", jwks_file="/dev/null")])


def _app(service: ThighPainService, tmp_path: Path, **settings: Any) -> TestClient:
    db = f"sqlite:///{tmp_path / 'feedback.sqlite3'}"
    trust = settings.pop("trust", None)
    app = create_app(Settings(database_url=db, **settings), service=service,
                     store=FeedbackStore(db), as_of=AS_OF, trust=trust)
    return TestClient(app)


def test_view_is_on_in_development_mode_and_lists_every_scenario(client: TestClient) -> None:
    page = client.get("/view")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    names = {s.name for s in scenarios()}
    assert names == {p.stem for p in (EXAMPLES / "bundles").glob("*.json")}
    for name in names:
        assert f"/view?example={name}" in page.text
    assert "view/static/view.css" in page.text and "https://" not in page.text.split("<body")[0]


def test_view_in_trust_mode_only_when_enabled(service: ThighPainService, tmp_path: Path) -> None:
    with _app(service, tmp_path, trust=TRUST) as closed:
        assert closed.get("/view").status_code == 404
        assert closed.get("/smart/launch.html").status_code == 200  # EHRs launch the app
    with _app(service, tmp_path, trust=TRUST, view_enabled=True) as opened:
        assert opened.get("/view").status_code == 200
        # with no caller identity the view never fetches from a fhirServer in trust mode
        request = json.loads((EXAMPLES / "requests" / "dvt-likely.json").read_text())
        request.pop("prefetch")
        request["fhirServer"] = "http://127.0.0.1:9/fhir"
        page = opened.post("/view", data={"document": json.dumps(request)})
        assert page.status_code == 400 and "no usable" not in page.text
        assert "not one this client may use" in page.text


def test_scenario_page_shows_patient_and_rendered_cards(client: TestClient) -> None:
    page = client.get("/view", params={"example": "cauda-equina"})
    assert page.status_code == 200
    assert 'class="patient__name"' in page.text
    assert 'data-indicator="critical"' in page.text
    cards_html = page.text.split('class="cards"')[1].split('class="raw"')[0]
    assert "**" not in cards_html and "<strong>" in cards_html


def test_unknown_scenario_and_bad_input_say_what_is_wrong(client: TestClient) -> None:
    missing = client.get("/view", params={"example": "../../etc/passwd"})
    assert missing.status_code == 404 and "no example scenario" in missing.text
    bad = client.post("/view", data={"document": '{"resourceType": "Patient"}'})
    assert bad.status_code == 400 and "neither a FHIR Bundle nor a CDS Hooks request" in bad.text
    empty = client.post("/view", data={"document": "  "})
    assert empty.status_code == 400 and "paste or upload" in empty.text


def test_uploaded_bundle_runs_through_the_service(client: TestClient) -> None:
    bundle = (EXAMPLES / "bundles" / "cauda-equina.json").read_bytes()
    page = client.post("/view", files={"upload": ("chart.json", bundle, "application/json")},
                       data={"as_of": "2026-11-24"})
    assert page.status_code == 200
    assert "chart.json" in page.text and 'data-indicator="critical"' in page.text


def test_markdown_escapes_html_and_unsafe_links() -> None:
    html = str(render_markdown("**Wells 2** <script>alert(1)</script> [x](javascript:alert(1))"))
    assert "<strong>Wells 2</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
