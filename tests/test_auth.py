"""CDS Hooks 2.0 client JWTs: who may call, what is refused, and SSRF protection."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from cds.api import create_app
from cds.auth import TrustConfig, TrustedIssuer, fhir_server_allowed
from cds.config import Settings
from tests.fhir import AS_OF, hook_request

ISS = "https://ehr.example.org"
BASE = "http://testserver"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key, kid: str, alg: str) -> dict:
    algo = jwt.algorithms.ECAlgorithm if alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
    data = json.loads(algo.to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture
def trust(tmp_path: Path) -> TrustConfig:
    jwks = {"keys": [_jwk(EC_KEY, "ec-1", "ES384"), _jwk(RSA_KEY, "rsa-1", "RS384")]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    return TrustConfig(public_url=BASE, issuers=[TrustedIssuer(
        iss=ISS, jwks_file=str(path), jku=[f"{ISS}/.well-known/jwks.json"],
        fhir_servers=["https://fhir.ehr.example.org/r4"])])


@pytest.fixture
def secure(trust: TrustConfig, service, tmp_path: Path) -> TestClient:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fb.sqlite3'}")
    return TestClient(create_app(settings, service=service, as_of=AS_OF, trust=trust))


def token(aud: str, *, key=EC_KEY, alg="ES384", kid="ec-1", iss=ISS, exp_in=300,
          jti: str | None = None, headers: dict | None = None, **claims) -> str:
    now = int(time.time())
    payload = {"iss": iss, "aud": aud, "iat": now, "exp": now + exp_in,
               "jti": jti or str(uuid.uuid4()), **claims}
    return jwt.encode(payload, key, algorithm=alg,
                      headers={"kid": kid, "typ": "JWT", **(headers or {})})


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def test_valid_es384_token_is_accepted_on_every_endpoint(secure):
    assert secure.get("/cds-services",
                      headers=auth(token(f"{BASE}/cds-services"))).status_code == 200
    reply = secure.post("/cds-services/thigh-pain", json=hook_request(),
                        headers=auth(token(f"{BASE}/cds-services/thigh-pain")))
    assert reply.status_code == 200
    item = {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}
    reply = secure.post("/cds-services/thigh-pain/feedback", json={"feedback": [item]},
                        headers=auth(token(f"{BASE}/cds-services/thigh-pain/feedback")))
    assert reply.status_code == 200


def test_valid_rs384_token_is_accepted(secure):
    tok = token(f"{BASE}/cds-services", key=RSA_KEY, alg="RS384", kid="rsa-1")
    assert secure.get("/cds-services", headers=auth(tok)).status_code == 200


def _hs256_with_public_key() -> str:
    """The classic confusion attack: HMAC-sign with the RSA public key as the secret."""
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    now = int(time.time())
    payload = {"iss": ISS, "aud": f"{BASE}/cds-services", "iat": now, "exp": now + 60,
               "jti": str(uuid.uuid4())}
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = hmac.new(pem, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"


def _alg_none() -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISS, "aud": f"{BASE}/cds-services", "iat": now,
                       "exp": now + 60, "jti": "x"}, None, algorithm="none",
                      headers={"kid": "ec-1"})


@pytest.mark.parametrize(
    "bad",
    [
        lambda: None,
        lambda: "not-a-jwt",
        lambda: token(f"{BASE}/cds-services/thigh-pain"),  # aud of another endpoint
        lambda: token(f"{BASE}/cds-services", exp_in=-120),  # expired
        lambda: token(f"{BASE}/cds-services", iss="https://evil.example.com"),
        lambda: token(f"{BASE}/cds-services", kid="unknown"),
        lambda: token(f"{BASE}/cds-services", kid=""),
        lambda: token(f"{BASE}/cds-services",
                      headers={"jku": "https://evil.example.com/jwks.json"}),
        lambda: token(f"{BASE}/cds-services", key=ec.generate_private_key(ec.SECP384R1())),
        _alg_none,
        _hs256_with_public_key,
    ],
    ids=["missing", "garbage", "wrong-aud", "expired", "untrusted-iss", "unknown-kid",
         "empty-kid", "foreign-jku", "wrong-key", "alg-none", "hs256-confusion"],
)
def test_bad_tokens_get_401_without_details(secure, bad):
    tok = bad()
    reply = secure.get("/cds-services", headers=auth(tok) if tok else {})
    assert reply.status_code == 401
    assert reply.json() == {"error": "unauthorized"}


def test_replayed_jti_is_refused(secure):
    tok = token(f"{BASE}/cds-services", jti="once")
    assert secure.get("/cds-services", headers=auth(tok)).status_code == 200
    assert secure.get("/cds-services", headers=auth(tok)).status_code == 401


def test_token_is_never_logged(secure, caplog):
    tok = token(f"{BASE}/cds-services/thigh-pain")  # wrong aud for discovery
    secure.get("/cds-services", headers=auth(tok))
    assert "authentication failed" in caplog.text
    assert tok not in caplog.text


def test_fhir_server_must_be_one_the_issuer_may_use(secure):
    request = hook_request(fhirServer="http://169.254.169.254/latest", fhirAuthorization={
        "access_token": "t", "token_type": "Bearer", "expires_in": 60,
        "scope": "patient/*.read", "subject": "cds"})
    request.pop("prefetch")
    reply = secure.post("/cds-services/thigh-pain", json=request,
                        headers=auth(token(f"{BASE}/cds-services/thigh-pain")))
    assert reply.status_code == 412
    assert "not one this client may use" in reply.json()["error"]


def test_development_mode_blocks_metadata_addresses():
    assert fhir_server_allowed("https://fhir.example.org/r4", None)
    assert fhir_server_allowed("http://127.0.0.1:8080/fhir", None)
    assert not fhir_server_allowed("http://169.254.169.254/latest/meta-data", None)
    assert not fhir_server_allowed("http://metadata.google.internal/", None)
    assert not fhir_server_allowed("file:///etc/passwd", None)
    issuer = TrustedIssuer(iss=ISS, fhir_servers=["https://fhir.ehr.example.org/r4"])
    assert fhir_server_allowed("https://fhir.ehr.example.org/r4/", issuer)
    assert not fhir_server_allowed("https://fhir.ehr.example.org.evil.com/r4", issuer)


def test_replay_signs_its_calls_to_a_secured_service(trust, service, tmp_path):
    """`cds replay --url --jwt-key` mints a token the service accepts (aud = endpoint)."""
    import threading

    import uvicorn
    from typer.testing import CliRunner

    from cds.cli import app as cli
    from tests.net import free_port

    pem = tmp_path / "key.pem"
    pem.write_bytes(EC_KEY.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    port = free_port()
    trust = trust.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}"), service=service,
                     trust=trust)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        request = tmp_path / "r.json"
        request.write_text(json.dumps(hook_request()))
        url = f"http://127.0.0.1:{port}"
        signed = CliRunner().invoke(cli, ["replay", str(request), "--url", url,
                                          "--jwt-key", str(pem), "--jwt-issuer", ISS,
                                          "--jwt-kid", "ec-1"])
        unsigned = CliRunner().invoke(cli, ["replay", str(request), "--url", url])
    finally:
        server.should_exit = True
        thread.join(timeout=5)
    assert signed.exit_code == 0, signed.output
    assert unsigned.exit_code == 1 and "HTTP 401" in unsigned.output


def test_as_of_cannot_move_a_running_services_clock(tmp_path):
    from typer.testing import CliRunner

    from cds.cli import app as cli

    request = tmp_path / "r.json"
    request.write_text(json.dumps(hook_request()))
    result = CliRunner().invoke(cli, ["replay", str(request), "--url", "http://127.0.0.1:9",
                                      "--as-of", "2026-11-24"])
    assert result.exit_code == 2 and "in process only" in result.output


def test_jwks_is_fetched_from_the_issuer_url_cached_and_refreshed_for_new_kids(
        service, tmp_path, monkeypatch):
    import responses

    url = f"{ISS}/.well-known/jwks.json"
    trust = TrustConfig(public_url=BASE, issuers=[TrustedIssuer(iss=ISS, jwks_url=url)])
    client = TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}"),
                                   service=service, trust=trust))
    new_key = ec.generate_private_key(ec.SECP384R1())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(url, json={"keys": [_jwk(EC_KEY, "ec-1", "ES384")]})
        for _ in range(3):
            assert client.get("/cds-services",
                              headers=auth(token(f"{BASE}/cds-services"))).status_code == 200
        assert len(mock.calls) == 1, "the key set is cached"
        # a rotated key the cache does not know yet: refetched, but at most once a minute
        mock.replace(responses.GET, url, json={"keys": [_jwk(new_key, "ec-2", "ES384")]})
        rotated = token(f"{BASE}/cds-services", key=new_key, kid="ec-2")
        assert client.get("/cds-services", headers=auth(rotated)).status_code == 401
        monkeypatch.setattr("cds.auth.JWKS_REFETCH_AFTER_SECONDS", 0)  # a minute later
        rotated = token(f"{BASE}/cds-services", key=new_key, kid="ec-2")
        assert client.get("/cds-services", headers=auth(rotated)).status_code == 200


def test_cors_for_configured_origins_only(service, tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}",
                        cors_origins=["https://sandbox.cds-hooks.org"])
    client = TestClient(create_app(settings, service=service))
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    ok = client.options("/cds-services/thigh-pain",
                        headers={"Origin": "https://sandbox.cds-hooks.org", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    other = client.options("/cds-services/thigh-pain",
                           headers={"Origin": "https://evil.example.com", **preflight})
    assert "access-control-allow-origin" not in other.headers
