"""A stand-in EHR on 127.0.0.1 for SMART App Launch 2.x tests (EHR launch, public client).

It does what an EHR does around a SMART app: publishes .well-known/smart-configuration,
issues a launch id, checks the authorization request (client, redirect URI, launch, aud,
state, PKCE S256), exchanges the code for a token carrying the patient context (checking the
PKCE verifier), and serves a FHIR API over a bundle's resources (search, read, create) to
bearers of its tokens, with CORS for the app's origin. It also calls CDS Hooks the way an
EHR does, with its FHIR server and a token for the service to fetch with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cds.bundle import search, searchset


@dataclass
class StandInEhr:
    resources: list[dict[str, Any]]
    client_id: str
    redirect_uri: str
    base: str = ""
    launches: dict[str, str] = field(default_factory=dict)  # launch id -> patient id
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> patient id
    created: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def fhir_base(self) -> str:
        return f"{self.base}/fhir"

    def launch(self, patient_id: str) -> str:
        launch_id = secrets.token_urlsafe(12)
        self.launches[launch_id] = patient_id
        return launch_id

    def token_for_service(self, patient_id: str) -> dict[str, Any]:
        """The fhirAuthorization an EHR puts in a hook request."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = patient_id
        return {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                "scope": "patient/*.rs", "subject": "thigh-pain-cds", "patient": patient_id}

    # -------------------------------------------------------------- OAuth

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """(status, redirect location or error) for an authorization request."""
        problems = []
        if query.get("response_type") != "code":
            problems.append("response_type must be code")
        if query.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        if query.get("redirect_uri") != self.redirect_uri:
            problems.append(f"redirect_uri {query.get('redirect_uri')} is not registered")
        if query.get("launch") not in self.launches:
            problems.append("unknown launch")
        if query.get("aud") != self.fhir_base:
            problems.append("aud is not this FHIR server")
        if not query.get("state"):
            problems.append("no state")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            problems.append("PKCE S256 challenge required")
        if "launch" not in query.get("scope", "").split():
            problems.append("scope lacks launch")
        if problems:
            return 400, "; ".join(problems)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": query["code_challenge"],
                            "redirect_uri": query["redirect_uri"],
                            "patient": self.launches[query["launch"]],
                            "scope": query["scope"]}
        self.events.append("authorize")
        return 302, f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        token = secrets.token_urlsafe(24)
        self.tokens[token] = grant["patient"]
        self.events.append("token")
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                     "scope": grant["scope"], "patient": grant["patient"],
                     "need_patient_banner": False}

    def smart_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/auth/authorize",
            "token_endpoint": f"{self.base}/auth/token",
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["launch", "openid", "fhirUser", "patient/*.rs",
                                 "patient/QuestionnaireResponse.crs"],
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient",
                             "permission-v2"],
        }

    # -------------------------------------------------------------- FHIR

    def create(self, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
        stored = {**resource, "resourceType": resource_type, "id": str(uuid.uuid4())}
        self.resources.append(stored)
        self.created.append(stored)
        return stored


def _handler(ehr: StandInEhr) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _bearer(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ")
            return ehr.tokens.get(token) if auth.startswith("Bearer ") else None

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.end_headers()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/fhir/.well-known/smart-configuration":
                self._json(200, ehr.smart_configuration())
                return
            if parts.path == "/auth/authorize":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                status, where = ehr.authorize(query)
                if status != 302:
                    self._json(status, {"error": where})
                    return
                self.send_response(302)
                self.send_header("Location", where)
                self.end_headers()
                return
            if not parts.path.startswith("/fhir/"):
                self._json(404, {"error": "not found"})
                return
            if parts.path == "/fhir/metadata":
                self._json(200, {"resourceType": "CapabilityStatement", "status": "active",
                                 "fhirVersion": "4.0.1", "kind": "instance"})
                return
            patient = self._bearer()
            if patient is None:
                self._json(401, {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "login"}]})
                return
            query = parts.path.removeprefix("/fhir/") + (f"?{parts.query}" if parts.query
                                                         else "")
            hits = search(ehr.resources, query)
            if "?" not in query and "/" in query:
                if hits:
                    self._json(200, hits[0])
                else:
                    self._json(404, {"resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": "not-found"}]})
                return
            self._json(200, searchset(hits))

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if parts.path == "/auth/token":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                status, reply = ehr.token(form)
                self._json(status, reply, {"Cache-Control": "no-store"})
                return
            resource_type = parts.path.removeprefix("/fhir/")
            if self._bearer() is None or resource_type != "QuestionnaireResponse":
                self._json(403, {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "forbidden"}]})
                return
            stored = ehr.create(resource_type, json.loads(body))
            self._json(201, stored, {"Location": f"{ehr.fhir_base}/{resource_type}/"
                                                 f"{stored['id']}/_history/1"})

    return Handler


@contextmanager
def running_ehr(resources: list[dict[str, Any]], client_id: str,
                redirect_uri: str) -> Iterator[StandInEhr]:
    ehr = StandInEhr(list(resources), client_id, redirect_uri)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ehr))
    ehr.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ehr
    finally:
        server.shutdown()
        server.server_close()
