"""HTTP: discovery, hook calls, feedback and health, with the CDS Hooks error contract.

Bad input gets a 4xx with a message saying what is wrong (400 for malformed JSON or a request
that breaks the specification, 404 for an unknown service, 412 when required data can be
neither prefetched nor fetched, 413 for an oversized body). Feedback gets 503 while the store
cannot take it; hook calls never wait for the store (issued cards are recorded in the
background). Logs carry the hookInstance, service, timings and card counts, never patient
data or tokens.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds import __version__, heap, units
from cds.api_access import annotate
from cds.api_docs import json_body, new_app
from cds.api_metrics import observe_feedback, observe_hook
from cds.api_ops import install_operations
from cds.asgi_replay import replaying
from cds.auth import (
    JwtVerifier,
    TrustConfig,
    TrustedIssuer,
    fhir_server_allowed,
    load_trust,
)
from cds.browser import mount_browser_apps
from cds.config import Settings, get_settings
from cds.hooks import DiscoveryResponse, FeedbackRequest, HookRequest, HookResponse
from cds.prefetch import InvalidPrefetch, PreconditionFailed
from cds.redaction import install_token_redaction
from cds.request_auth import Authenticate, issuer_of
from cds.request_text import RefuseLoneSurrogates, is_json, lone_surrogate, refusal
from cds.service import ThighPainService, UnknownService, WrongHook
from cds.store import Store, StoreUnavailable, open_store

log = logging.getLogger("cds.api")

HOOK_THREADS = 40  # hook calls in progress at once (each holds a thread while it fetches)
# bodies up to this size are answered on the event loop when nothing must be fetched: about
# 400 Observations, a few milliseconds of work (see call_service)
INLINE_MAX_BYTES = 256 * 1024


class MustFetch(Exception):
    """Raised instead of reading from the FHIR server when a call is answered inline."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _error(status: int, message: str, details: list[Any] | None = None,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    if status == 401:  # RFC 6750: say which scheme the client must use
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="cds-services"'}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        out.append(f"{where or 'body'}: {err.get('msg')}")
    return out


UNDECODED_BODY = "cds.undecoded_body"  # ASGI scope key: a body orjson refused


class OrjsonRequest(Request):
    """Decodes JSON bodies with orjson: several times faster than the standard library on
    large charts, and stricter (no NaN, no lone surrogates, nesting limited to 1,024 levels).
    Its JSONDecodeError is the standard library's, so FastAPI's 400 contract holds."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self.scope[UNDECODED_BODY] = body  # for the 400 handler to say why
                raise
        return self._json


class OrjsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return route


class DirectRoute(OrjsonRoute):
    """A route whose endpoint is given the Request and its path parameters as they come, and
    answers with a Response of its own: FastAPI's parameter solving and response handling
    are skipped. For the hook endpoint, which reads and validates its body itself (see
    `_hook_request`); its signature still documents the parameters in OpenAPI."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def route(request: Request) -> Response:
            response: Response = await endpoint(
                request=OrjsonRequest(request.scope, request.receive), **request.path_params)
            return response

        return route


async def _hook_request(request: Request) -> HookRequest:
    """The body of a hook call, read here rather than by a FastAPI body parameter: this is
    the service's hot path, and FastAPI's general dependency solving cost more than the
    validation itself. Errors are raised as FastAPI's would be, so that `bad_request`
    answers them with the same 400s as every other endpoint's."""
    body = await request.body()
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    if not is_json(request.headers.get("content-type", "")):
        raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",),
                                       "msg": "Input should be a JSON object", "input": None}])
    try:
        raw = await request.json()
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                       "msg": "JSON decode error", "input": {},
                                       "ctx": {"error": exc.msg}}]) from exc
    try:
        return HookRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from exc


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit, announced or streamed (chunked)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await _error(413, f"request body larger than {self.limit} bytes")(scope, receive,
                                                                                send)
            return
        # read the whole body first (the handlers need all of it anyway), refusing it as
        # soon as it passes the limit, then hand it on in one piece: joined once, and not
        # copied at all when it came in one message (a chart is read again by every stage
        # after this, and each copy of it pushes the engine's data out of the CPU caches)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _error(413, f"request body larger than {self.limit} bytes")(
                    scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replaying(whole, receive), send)


def create_app(settings: Settings | None = None, service: ThighPainService | None = None,
               store: Store | None = None,
               as_of: datetime | None = None,
               trust: TrustConfig | None = None) -> FastAPI:
    settings = settings or get_settings()
    service = service or ThighPainService(always_answer=settings.always_answer)
    store = store or open_store(settings.database_url,
                                retention_days=settings.issued_retention_days)
    store.start()  # issued-card writer and pruning, off the request path
    trust = trust or load_trust(settings.trust_file)
    verifier = None if trust.development else JwtVerifier(trust, seen=store.remember_token)
    if verifier is None:
        log.warning("DEVELOPMENT MODE: no trusted issuers configured, requests are NOT "
                    "authenticated. Set CDS_TRUST_FILE before connecting a real EHR.")

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with heap.settled(application):  # no collector passes in most hook calls
            yield
        store.close()  # writes the issued cards still queued

    app = new_app(
        settings.docs,
        title="Posterior thigh pain CDS service",
        version=__version__,
        description="CDS Hooks 2.0 service: red flags and likely causes of posterior thigh pain.",
        lifespan=lifespan,
    )
    app.router.route_class = OrjsonRoute
    app.state.service = service
    app.state.store = store
    app.add_middleware(RefuseLoneSurrogates, strict_json_under="/cds-services")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    # outside the body limit: an unauthenticated request is refused before its body is read
    app.add_middleware(Authenticate, verifier=verifier, public_url=trust.public_url)
    install_token_redaction()
    app.add_middleware(  # outermost, so that errors reach browser clients too
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
    )
    install_operations(app, store)

    async def caller(request: Request) -> TrustedIssuer | None:
        """The trusted issuer of the request's JWT, checked by Authenticate before the body
        was read (None in development mode)."""
        return issuer_of(request.scope)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and not is_json(content_type):
            return _error(400, "Content-Type must be application/json, not "
                               f"{content_type or 'missing'!r}", details)
        if any("JSON decode error" in d or "json_invalid" in d for d in details):
            where = lone_surrogate(request.scope.get(UNDECODED_BODY, b""))  # (request_text)
            if where is not None:
                return refusal(where)
            return _error(400, "malformed JSON", details)
        return _error(400, "request does not follow the CDS Hooks 2.0 specification", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.get("/cds-services", response_model=DiscoveryResponse, response_model_exclude_none=True,
             tags=["CDS Hooks"])
    def discovery(_: TrustedIssuer | None = Depends(caller)) -> DiscoveryResponse:
        return service.discovery()

    # Hook calls run in threads of their own: while slow FHIR servers hold some of them (at
    # most FetchLimits.total_seconds each), discovery, feedback and health still answer.
    hook_threads = anyio.CapacityLimiter(HOOK_THREADS)

    async def call_service(service_id: str, request: Request) -> Response:
        hook_request = await _hook_request(request)
        issuer = issuer_of(request.scope)  # what `caller` gives, without a dependency to solve
        annotate(request, request_id=str(hook_request.hookInstance), service=service_id)

        def answer(may_fetch: bool) -> Response:
            def allow_server(url: str) -> bool:
                if not may_fetch:
                    raise MustFetch
                return fhir_server_allowed(url, issuer)

            try:
                response, stats = service.call(service_id, hook_request, as_of=as_of,
                                               allow_server=allow_server)
            except UnknownService as exc:
                raise ApiError(404, f"no CDS service with id {service_id!r}") from exc
            except WrongHook as exc:
                raise ApiError(400, str(exc)) from exc
            except InvalidPrefetch as exc:
                raise ApiError(400, str(exc)) from exc
            except PreconditionFailed as exc:
                raise ApiError(412, str(exc)) from exc
            store.record_issued(service_id, response.cards)
            observe_hook(response.cards, stats)
            annotate(request, cards=stats.cards, by_indicator=stats.by_indicator,
                     fetched=len(stats.fetched), missing=stats.missing, skipped=stats.skipped,
                     pipeline_ms=round(stats.millis, 1))
            # the cards were built from the wire models: encode them once, with orjson,
            # rather than have FastAPI validate and serialise the response model again
            return Response(orjson.dumps(response.wire()), media_type="application/json")

        # A call whose data all came in the request is a millisecond or two of CPU: answer it
        # right here, since handing it to a thread costs about as much again (thread wake-ups
        # and GIL hand-overs). A call that must read from the FHIR server, a chart large
        # enough to hold the event loop noticeably, or a call in the first seconds, while the
        # unit registry is still loading, goes to the hook threads instead.
        if len(await request.body()) <= INLINE_MAX_BYTES and units.loaded():
            try:
                return answer(may_fetch=False)
            except MustFetch:
                pass
        return await anyio.to_thread.run_sync(answer, True, limiter=hook_threads)

    app.router.add_api_route(
        "/cds-services/{service_id}", call_service, methods=["POST"],
        response_model=HookResponse, response_model_exclude_none=True, tags=["CDS Hooks"],
        responses={400: {}, 401: {}, 404: {}, 412: {}, 413: {}},
        openapi_extra=json_body(HookRequest), route_class_override=DirectRoute)
    # matched first: it is the route called on every chart opened
    app.router.routes.insert(0, app.router.routes.pop())

    @app.post("/cds-services/{service_id}/feedback", tags=["CDS Hooks"],
              responses={400: {}, 401: {}, 404: {}, 503: {}})
    def feedback(service_id: str, body: FeedbackRequest, request: Request,
                 _: TrustedIssuer | None = Depends(caller)) -> dict[str, int]:
        if service_id not in service.discovery_ids():
            raise ApiError(404, f"no CDS service with id {service_id!r}")
        try:
            new = store.add(service_id, body.feedback)
        except StoreUnavailable as exc:
            log.error("feedback not stored (answered 503): %s", exc)
            raise ApiError(503, "feedback store unavailable; nothing was stored, please "
                                "send it again later") from exc
        observe_feedback(body.feedback, new)
        annotate(request, service=service_id, feedback=len(body.feedback), new=new)
        return {"received": len(body.feedback), "new": new}

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    mount_browser_apps(app, settings, service, store, trust, as_of)  # /view and /smart
    return app
