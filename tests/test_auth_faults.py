"""Authentication under attack and faults: token lifetime and audience, tokens in URLs,
bodies refused before they are read, and a JWKS URL that fails or hangs."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import anyio
import pytest
import requests
import responses
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from cds.api import create_app
from cds.auth import AuthError, JwtVerifier, TrustConfig, TrustedIssuer
from cds.config import Settings
from tests.fhir import hook_request
from tests.net import free_port
from tests.test_auth import BASE, EC_KEY, ISS, RSA_KEY, _jwk, auth, token
from tests.test_auth import secure as secure  # the fixtures
from tests.test_auth import trust as trust

JWKS_URL = f"{ISS}/.well-known/jwks.json"


def _client(trust: TrustConfig, service, tmp_path: Path) -> TestClient:
    return TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}"),
                                 service=service, trust=trust))


# ---------------------------------------------------------------- lifetime and audience


@pytest.mark.parametrize(("exp_in", "iat_ago", "accepted"), [
    (300, 0, True),  # the 5 minutes of the specification's examples
    (3600, 0, False),  # an hour
    (10 * 365 * 86400, 0, False),  # ten years
    (200, 400, False),  # issued long ago: exp - iat is 10 minutes
])
def test_tokens_living_longer_than_the_maximum_are_refused(secure, exp_in, iat_ago,
                                                           accepted) -> None:
    tok = token(f"{BASE}/cds-services", exp_in=exp_in, iat=int(time.time()) - iat_ago)
    reply = secure.get("/cds-services", headers=auth(tok))
    assert reply.status_code == (200 if accepted else 401)


def test_the_maximum_lifetime_is_configurable(trust, service, tmp_path) -> None:
    longer = trust.model_copy(update={"max_token_lifetime_seconds": 3600})
    client = _client(longer, service, tmp_path)
    tok = token(f"{BASE}/cds-services", exp_in=3000)
    assert client.get("/cds-services", headers=auth(tok)).status_code == 200


def test_trust_mode_requires_public_url(tmp_path, monkeypatch) -> None:
    issuer = TrustedIssuer(iss=ISS, jwks_url=JWKS_URL)
    with pytest.raises(ValidationError, match="public_url is required"):
        TrustConfig(issuers=[issuer])
    trust_file = tmp_path / "trust.json"
    trust_file.write_text(json.dumps({"issuers": [issuer.model_dump()]}))
    from cds.cli import app as cli

    monkeypatch.setenv("CDS_TRUST_FILE", str(trust_file))  # serve sets it; restored after
    result = CliRunner().invoke(cli, ["serve", "--trust-file", str(trust_file)])
    assert result.exit_code != 0
    assert "public_url is required" in result.output


def test_host_and_forwarded_headers_never_choose_the_audience(secure) -> None:
    """A token minted for another service must not pass because the client says it is
    calling that service."""
    other = "https://other-service.example"
    tok = token(f"{other}/cds-services")
    reply = secure.get("/cds-services", headers={
        **auth(tok), "Host": "other-service.example", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "other-service.example"})
    assert reply.status_code == 401


# ---------------------------------------------------------------- tokens in URLs


@pytest.fixture
def access_log() -> list[str]:
    return []


def _serve_and_get(app, path: str, log_lines: list[str]) -> requests.Response:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info")  # access log on
    server = uvicorn.Server(config)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log_lines.append(record.getMessage())

    handler = Collect()
    for name in ("uvicorn.access", "uvicorn.error", "cds"):
        logging.getLogger(name).addHandler(handler)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for name in ("uvicorn.access", "uvicorn.error", "cds"):
            logging.getLogger(name).removeHandler(handler)


@pytest.mark.parametrize("mode", ["trust", "development"])
@pytest.mark.parametrize("query", ["access_token={tok}", "jwt={tok}", "x={tok}"])
def test_a_token_in_the_query_string_is_refused_and_never_logged(trust, service, tmp_path,
                                                                 access_log, mode,
                                                                 query) -> None:
    tok = token(f"{BASE}/cds-services")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}")
    app = create_app(settings, service=service,
                     trust=trust if mode == "trust" else TrustConfig())
    reply = _serve_and_get(app, "/cds-services?" + query.format(tok=tok), access_log)
    assert reply.status_code == 401
    assert any("GET /cds-services?" in line for line in access_log), access_log
    assert not any(tok in line or tok.split(".")[1] in line for line in access_log)


# ---------------------------------------------------------------- authenticate first


def test_an_unauthenticated_request_is_refused_before_its_body_is_read(trust, service,
                                                                       tmp_path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}"), service=service,
                     trust=trust)
    body = json.dumps(hook_request()).encode()
    reads: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        reads.append(len(body))
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/cds-services/thigh-pain",
             "raw_path": b"/cds-services/thigh-pain", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    # in a thread of its own: other tests (the browser's) may own this thread's event loop
    runner = threading.Thread(target=anyio.run, args=(app, scope, receive, send))
    runner.start()
    runner.join(timeout=30)
    assert sent[0]["status"] == 401
    assert reads == [], "the body was read before the caller was authenticated"


# ---------------------------------------------------------------- JWKS faults


def _verifier() -> JwtVerifier:
    return JwtVerifier(TrustConfig(public_url=BASE,
                                   issuers=[TrustedIssuer(iss=ISS, jwks_url=JWKS_URL)]))


def test_a_failing_jwks_url_is_not_fetched_on_every_request(monkeypatch) -> None:
    verifier = _verifier()
    with responses.RequestsMock() as mock:
        mock.get(JWKS_URL, body=requests.ConnectionError("down"))
        for _ in range(10):
            with pytest.raises(AuthError, match="unavailable"):
                verifier.verify("Bearer " + token(f"{BASE}/cds-services"), f"{BASE}/cds-services")
        assert len(mock.calls) == 1, "failures are remembered until the back-off passes"
        monkeypatch.setattr("cds.auth.JWKS_RETRY_FIRST_SECONDS", 0)  # the back-off has passed
        verifier.jwks[ISS].retry_at = 0
        mock.replace(responses.GET, JWKS_URL, json={"keys": [_jwk(EC_KEY, "ec-1", "ES384")]})
        assert verifier.verify("Bearer " + token(f"{BASE}/cds-services"),
                               f"{BASE}/cds-services").iss == ISS
        assert len(mock.calls) == 2


def test_a_slow_jwks_fetch_does_not_hold_up_other_requests(monkeypatch) -> None:
    """While one request waits for a hanging JWKS URL, others are answered (401 here, since
    no key is known yet) instead of queueing behind it."""
    monkeypatch.setattr("cds.auth.JWKS_WAIT_SECONDS", 0.05)
    verifier = _verifier()
    started, release = threading.Event(), threading.Event()

    def hanging(_request):
        started.set()
        release.wait(20)
        return 200, {}, json.dumps({"keys": [_jwk(EC_KEY, "ec-1", "ES384")]})

    outcomes: list[str] = []

    def verify() -> None:
        try:
            verifier.verify("Bearer " + token(f"{BASE}/cds-services"), f"{BASE}/cds-services")
            outcomes.append("ok")
        except AuthError:
            outcomes.append("401")

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, JWKS_URL, callback=hanging)
        first = threading.Thread(target=verify)
        first.start()
        assert started.wait(10)
        others = [threading.Thread(target=verify) for _ in range(5)]
        for t in others:
            t.start()
        for t in others:
            t.join(timeout=10)
        answered_while_hanging = sum(not t.is_alive() for t in others)
        release.set()
        first.join(timeout=10)
        assert len(mock.calls) == 1
    assert answered_while_hanging == 5
    assert outcomes.count("401") == 5 and outcomes[-1] == "ok"


@pytest.mark.parametrize(("alg", "accepted"), [
    ("RS256", True), ("RS384", True), ("PS256", True), ("PS512", True), ("ES384", False)])
def test_an_rsa_key_without_alg_accepts_the_rs_or_ps_alg_the_token_names(
        tmp_path, service, alg, accepted) -> None:
    jwk = _jwk(RSA_KEY, "rsa-no-alg", "RS256")
    del jwk["alg"]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    trust = TrustConfig(public_url=BASE, issuers=[TrustedIssuer(iss=ISS, jwks_file=str(path))])
    client = _client(trust, service, tmp_path)
    key = RSA_KEY if alg[:2] in ("RS", "PS") else EC_KEY
    tok = token(f"{BASE}/cds-services", key=key, alg=alg, kid="rsa-no-alg")
    assert client.get("/cds-services", headers=auth(tok)).status_code == (
        200 if accepted else 401)


def test_a_key_that_declares_its_alg_accepts_only_that_alg(tmp_path, service) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(RSA_KEY, "rsa-1", "RS384")]}))
    trust = TrustConfig(public_url=BASE, issuers=[TrustedIssuer(iss=ISS, jwks_file=str(path))])
    client = _client(trust, service, tmp_path)
    for alg, status in (("RS384", 200), ("PS384", 401), ("RS256", 401)):
        tok = token(f"{BASE}/cds-services", key=RSA_KEY, alg=alg, kid="rsa-1")
        assert client.get("/cds-services", headers=auth(tok)).status_code == status, alg
