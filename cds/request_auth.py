"""Authenticate a CDS Hooks call from its headers, before a byte of its body is read.

In trust mode an unauthenticated client must not make the service buffer (and, with the body
limit, hold up to CDS_MAX_BODY_BYTES of) a request it will refuse anyway, so this ASGI
middleware sits outside the body limit: it checks the bearer JWT against the configured
`public_url` (never the Host or X-Forwarded-* headers a client controls), refuses with 401
without calling `receive`, and hands the trusted issuer on in the ASGI scope. In every mode, a
token sent in the URL's query string is refused: URLs end up in access logs and proxies.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from cds.auth import AuthError, JwtVerifier, TrustedIssuer
from cds.redaction import JWT, TOKEN_PARAMETERS

log = logging.getLogger("cds.auth")

ISSUER_KEY = "cds.issuer"  # ASGI scope key: the TrustedIssuer of an authenticated call
PROTECTED_PREFIX = "/cds-services"


def token_in_query(query_string: bytes) -> bool:
    """Does the query string carry something that is, or is named like, a bearer token?"""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return any(name.lower() in TOKEN_PARAMETERS or JWT.search(name) or JWT.search(value)
               for name, value in pairs)


def issuer_of(scope: MutableMapping[str, Any]) -> TrustedIssuer | None:
    """The issuer the middleware authenticated (None in development mode)."""
    issuer = scope.get(ISSUER_KEY)
    return issuer if isinstance(issuer, TrustedIssuer) else None


class Authenticate:
    """ASGI middleware: 401 for calls under /cds-services without a valid client JWT."""

    def __init__(self, app: Any, verifier: JwtVerifier | None, public_url: str | None) -> None:
        self.app = app
        self.verifier = verifier
        self.public_url = (public_url or "").rstrip("/")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        if token_in_query(scope.get("query_string") or b""):
            log.warning("refused %s: a token in the URL query string", scope["path"])
            await _unauthorized("send the token in the Authorization header, never in the URL"
                                )(scope, receive, send)
            return
        if self.verifier is not None:
            authorization = Headers(scope=scope).get("authorization")
            audience = self.public_url + scope["path"]
            try:
                scope[ISSUER_KEY] = await anyio.to_thread.run_sync(
                    self.verifier.verify, authorization, audience)
            except AuthError as exc:
                log.warning("authentication failed on %s: %s", scope["path"], exc)
                await _unauthorized()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _unauthorized(message: str | None = None) -> JSONResponse:
    body = {"error": "unauthorized"} | ({"message": message} if message else {})
    return JSONResponse(status_code=401, content=body,
                        headers={"WWW-Authenticate": "Bearer"})
