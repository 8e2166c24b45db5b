"""Who may call us: CDS Hooks 2.0 client JWTs, checked against a list of trusted issuers.

Each trusted CDS client (EHR) is configured with its issuer (`iss`), where its public keys
are (a JWKS URL, fetched with requests and cached, or a local JWKS file), the `jku` values it
may announce, and the FHIR servers it may ask us to read from (so a caller cannot turn the
service into a proxy into the hospital network). With no issuers configured the service runs
in development mode: no authentication, loudly logged.

Checks, in the order of the CDS Hooks best practices: alg is asymmetric (never `none`, never
HMAC), kid present, iss trusted, jku allowed, signature, aud is the exact endpoint URL, exp and
iat (small leeway), jti not seen before while the token lives, tenant allowed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cds.fhir.scope import parse_origin, refused_host, within

log = logging.getLogger("cds.auth")

ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
LEEWAY_SECONDS = 30
JWKS_TTL_SECONDS = 3600
JWKS_REFETCH_AFTER_SECONDS = 60  # at most one refetch per minute on an unknown kid


class AuthError(Exception):
    """The request is not authenticated; the message is for logs, never for the caller."""


class TrustedIssuer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iss: str
    jwks_url: str | None = None
    jwks_file: str | None = None
    jku: list[str] = Field(default_factory=list)  # jku header values this client may send
    fhir_servers: list[str] = Field(default_factory=list)  # allowed fhirServer base URLs
    tenants: list[str] | None = None

    @field_validator("fhir_servers")
    @classmethod
    def _usable_bases(cls, value: list[str]) -> list[str]:
        for url in value:
            if parse_origin(url) is None:
                raise ValueError(f"fhir_servers: {url!r} is not an http(s) base URL without "
                                 "user name, password or dot segments")
        return value


class TrustConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuers: list[TrustedIssuer] = Field(default_factory=list)
    # the public base URL the EHR calls (aud is checked against it); the request URL if unset
    public_url: str | None = None

    @property
    def development(self) -> bool:
        return not self.issuers


def load_trust(path: str | Path | None) -> TrustConfig:
    """Read the trust file (JSON or TOML); no file means development mode."""
    if not path:
        return TrustConfig()
    file = Path(path)
    raw = tomllib.loads(file.read_text()) if file.suffix == ".toml" else json.loads(
        file.read_text())
    return TrustConfig.model_validate(raw)


class _Jwks:
    """One issuer's key set, from a file or a URL, cached with a TTL."""

    def __init__(self, issuer: TrustedIssuer, session: requests.Session) -> None:
        self.issuer = issuer
        self.session = session
        self.keys: dict[str, Any] = {}
        self.fetched_at = 0.0
        self.lock = threading.Lock()

    def _load(self) -> None:
        if self.issuer.jwks_file:
            data = json.loads(Path(self.issuer.jwks_file).read_text())
        elif self.issuer.jwks_url:
            reply = self.session.get(self.issuer.jwks_url, timeout=(3.05, 5),
                                     allow_redirects=False)
            reply.raise_for_status()
            data = reply.json()
        else:
            raise AuthError(f"issuer {self.issuer.iss} has no JWKS configured")
        keys = {}
        for jwk in jwt.PyJWKSet.from_dict(data).keys:
            if jwk.key_id:
                keys[jwk.key_id] = jwk
        self.keys = keys
        self.fetched_at = time.monotonic()

    def key(self, kid: str) -> Any:
        with self.lock:
            age = time.monotonic() - self.fetched_at
            if not self.keys or age > JWKS_TTL_SECONDS or (
                    kid not in self.keys and age > JWKS_REFETCH_AFTER_SECONDS):
                try:
                    self._load()
                except (requests.RequestException, ValueError, jwt.PyJWKSetError) as exc:
                    raise AuthError(f"JWKS of {self.issuer.iss} unavailable: "
                                    f"{exc.__class__.__name__}") from exc
            if kid not in self.keys:
                raise AuthError(f"unknown kid for {self.issuer.iss}")
            return self.keys[kid]


class _JtiCache:
    """Seen token ids until their expiry, bounded so it cannot grow without limit."""

    def __init__(self, limit: int = 100_000) -> None:
        self.seen: OrderedDict[str, float] = OrderedDict()
        self.limit = limit
        self.lock = threading.Lock()

    def check_and_add(self, key: str, expires: float) -> bool:
        now = time.time()
        with self.lock:
            while self.seen and next(iter(self.seen.values())) < now - LEEWAY_SECONDS:
                self.seen.popitem(last=False)
            if key in self.seen:
                return False
            self.seen[key] = expires
            if len(self.seen) > self.limit:
                self.seen.popitem(last=False)
            return True


class JwtVerifier:
    def __init__(self, config: TrustConfig, session: requests.Session | None = None,
                 seen: Callable[[str, str, float], bool] | None = None) -> None:
        """`seen(issuer, jti, keep_until)` is True the first time a token id is seen; the
        service passes its store's, shared by all processes (default: this process only)."""
        self.config = config
        session = session or requests.Session()
        self.issuers = {i.iss: i for i in config.issuers}
        self.jwks = {i.iss: _Jwks(i, session) for i in config.issuers}
        self.jti = _JtiCache()
        self.seen = seen or (lambda iss, jti, until: self.jti.check_and_add(f"{iss}|{jti}", until))

    def verify(self, authorization: str | None, audience: str) -> TrustedIssuer:
        """The trusted issuer behind a valid `Authorization: Bearer <JWT>`, or AuthError."""
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthError("no bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc.__class__.__name__}") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthError(f"algorithm {alg!r} not accepted")
        if header.get("typ") not in (None, "JWT"):
            raise AuthError("typ is not JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("no kid")
        issuer = self.issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise AuthError("untrusted issuer")
        jku = header.get("jku")
        if jku is not None and jku not in issuer.jku:
            raise AuthError("jku not allowed for this issuer")
        key = self.jwks[issuer.iss].key(kid)
        try:
            claims = jwt.decode(
                token, key=key, algorithms=[alg], audience=audience, issuer=issuer.iss,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"token rejected: {exc.__class__.__name__}: {exc}") from exc
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or iat > time.time() + LEEWAY_SECONDS:
            raise AuthError("iat in the future")
        if issuer.tenants is not None and claims.get("tenant") not in issuer.tenants:
            raise AuthError("tenant not allowed")
        if not self.seen(issuer.iss, str(claims["jti"]), float(claims["exp"]) + LEEWAY_SECONDS):
            raise AuthError("jti replayed")
        return issuer


# ---------------------------------------------------------------- safe fetching


def fhir_server_allowed(url: str, issuer: TrustedIssuer | None) -> bool:
    """May we fetch from this fhirServer on behalf of this caller?

    A trusted issuer lists its FHIR server base URLs: the fhirServer must have the same scheme,
    host and port as one of them and a path at or below its path (parsed, never a text
    prefix); a user name or password in the URL is refused. In development mode any http(s)
    server is allowed except link-local and cloud-metadata addresses; names are checked
    again on the addresses they resolve to, when the connection is made
    (cds.fhir.transport)."""
    origin = parse_origin(url)
    if origin is None:
        return False
    if issuer is not None:
        return any(within(url, allowed) for allowed in issuer.fhir_servers)
    return refused_host(origin.host) is None
