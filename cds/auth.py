"""Who may call us: CDS Hooks 2.0 client JWTs, checked against a list of trusted issuers.

Each trusted CDS client (EHR) is configured with its issuer (`iss`), where its public keys
are (a JWKS URL, fetched with requests and cached, or a local JWKS file), the `jku` values it
may announce, and the FHIR servers it may ask us to read from (so a caller cannot turn the
service into a proxy into the hospital network). With no issuers configured the service runs
in development mode: no authentication, loudly logged.

Checks, in the order of the CDS Hooks best practices: alg is asymmetric (never `none`, never
HMAC), kid present, iss trusted, jku allowed, signature, aud is the exact endpoint URL, exp and
iat (small leeway), a lifetime no longer than `max_token_lifetime_seconds` (CDS Hooks examples
use 5 minutes), jti not seen before while the token lives, tenant allowed.

Key sets come from each issuer's JWKS URL through a small cache written here rather than
PyJWT's PyJWKClient, because PyJWKClient (PyJWT 2.15) fetches while holding a lock every
other request on that client waits for, does not remember failures (a dead or slow JWKS URL is
fetched again, one request at a time, on every call), drops its cache at expiry even when the
refetch fails, and fetches with urllib, outside the requests session, timeouts and `responses`
mocks the rest of the service uses. PyJWT still parses the keys (PyJWKSet) and checks tokens.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cds.fhir.scope import parse_origin, refused_host, within

log = logging.getLogger("cds.auth")

ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
LEEWAY_SECONDS = 30
JWKS_TTL_SECONDS = 3600
JWKS_REFETCH_AFTER_SECONDS = 60  # at most one refetch per minute on an unknown kid
JWKS_RETRY_FIRST_SECONDS = 5.0  # after a failed fetch; doubling up to the maximum
JWKS_RETRY_MAX_SECONDS = 300.0
JWKS_WAIT_SECONDS = 2.0  # how long a request without a key waits for a fetch in progress
KEY_TYPES = {"ES": "EC", "RS": "RSA", "PS": "RSA"}  # alg family -> JWK kty


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
    # the public base URL the EHR calls: a token's aud must be this URL + the endpoint path.
    # Required with issuers: the Host and X-Forwarded-* headers are the client's to choose.
    public_url: str | None = None
    max_token_lifetime_seconds: int = Field(default=300, gt=0)  # exp - iat, and exp - now

    @model_validator(mode="after")
    def _audience_is_configured(self) -> TrustConfig:
        if self.issuers and not self.public_url:
            raise ValueError(
                "public_url is required when issuers are configured: it is the URL the EHR "
                "calls (e.g. https://cds.hospital.example/thigh), and client tokens' aud is "
                "checked against it, never against the Host or X-Forwarded-* headers")
        if self.public_url is not None and (parse_origin(self.public_url) is None
                                            or "?" in self.public_url):
            raise ValueError("public_url must be an http(s) URL without user name, password "
                             "or query")
        return self

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


@dataclass(frozen=True)
class _Key:
    jwk: jwt.PyJWK
    kty: str
    alg: str | None  # as the JWKS declares it, if it does


class _Jwks:
    """One issuer's key set, from a file or a URL, cached with a TTL.

    Fetching never happens under the lock: one request fetches while the others use the keys
    already known (or wait briefly for the first fetch). A failed fetch keeps the old keys and
    is not retried before a back-off (5 s, doubling to 5 min), so a dead or slow JWKS URL costs
    one fetch per back-off period, not one per request."""

    def __init__(self, issuer: TrustedIssuer, session: requests.Session) -> None:
        self.issuer = issuer
        self.session = session
        self.keys: dict[str, _Key] = {}
        self.fetched_at = -float("inf")
        self.retry_at = 0.0
        self.failures = 0
        self.last_error = ""
        self.in_flight: threading.Event | None = None
        self.lock = threading.Lock()

    def _load(self) -> dict[str, _Key]:
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
        raw_keys = {k.get("kid"): k for k in data.get("keys", ()) if isinstance(k, dict)}
        for jwk in jwt.PyJWKSet.from_dict(data).keys:
            if jwk.key_id:
                raw = raw_keys.get(jwk.key_id, {})
                keys[jwk.key_id] = _Key(jwk, str(raw.get("kty")), raw.get("alg"))
        return keys

    def _refresh(self, done: threading.Event) -> None:
        try:
            keys = self._load()
        except (requests.RequestException, ValueError, TypeError, AttributeError, OSError,
                jwt.PyJWKSetError, jwt.PyJWKError) as exc:
            with self.lock:
                self.failures += 1
                delay = min(JWKS_RETRY_MAX_SECONDS,
                            JWKS_RETRY_FIRST_SECONDS * 2 ** (self.failures - 1))
                self.retry_at = time.monotonic() + delay
                self.last_error = exc.__class__.__name__
            log.warning("JWKS of %s unavailable (%s); next try in %.0f s", self.issuer.iss,
                        exc.__class__.__name__, delay)
        else:
            with self.lock:
                self.keys, self.fetched_at = keys, time.monotonic()
                self.failures, self.retry_at, self.last_error = 0, 0.0, ""
        finally:
            with self.lock:
                self.in_flight = None
            done.set()

    def key(self, kid: str) -> _Key:
        with self.lock:
            now = time.monotonic()
            known = self.keys.get(kid)
            age = now - self.fetched_at
            wanted = age > JWKS_TTL_SECONDS or (known is None
                                                and age > JWKS_REFETCH_AFTER_SECONDS)
            fetch = wanted and self.in_flight is None and now >= self.retry_at
            if fetch:
                self.in_flight = threading.Event()
            waiting = self.in_flight
        if fetch and waiting is not None:
            self._refresh(waiting)
        elif known is None and waiting is not None:
            waiting.wait(JWKS_WAIT_SECONDS)  # another request is fetching: not under the lock
        with self.lock:
            found = self.keys.get(kid)
            error = self.last_error
        if found is None:
            if error:
                raise AuthError(f"JWKS of {self.issuer.iss} unavailable: {error}")
            raise AuthError(f"unknown kid for {self.issuer.iss}")
        return found


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
        if key.alg is not None and key.alg != alg:
            raise AuthError(f"alg {alg} is not the alg of key {kid}")
        if KEY_TYPES[alg[:2]] != key.kty:
            raise AuthError(f"alg {alg} does not fit a {key.kty} key")
        try:
            claims = jwt.decode(
                token, key=key.jwk.key, algorithms=[alg], audience=audience, issuer=issuer.iss,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"token rejected: {exc.__class__.__name__}: {exc}") from exc
        iat = claims.get("iat")
        now = time.time()
        if not isinstance(iat, int | float) or iat > now + LEEWAY_SECONDS:
            raise AuthError("iat in the future")
        longest = self.config.max_token_lifetime_seconds + LEEWAY_SECONDS
        if float(claims["exp"]) - iat > longest or float(claims["exp"]) - now > longest:
            raise AuthError(f"token lives longer than {self.config.max_token_lifetime_seconds}"
                            " s")
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
