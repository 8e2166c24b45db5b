"""Operations endpoints and instrumentation: liveness, readiness, /metrics, the access log.

Liveness says the process answers; readiness also asks the store (`store.ping()`), so a load
balancer stops sending feedback to an instance whose database is gone, and waits for the unit
registry, which takes a few seconds to build after start-up (until then a call that converts
units waits for it in a hook thread rather than being answered at once on the event loop).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.responses import Response

from cds import __version__, units
from cds.api_access import AccessLog
from cds.api_metrics import metrics_response
from cds.config import redact_url

log = logging.getLogger("cds.api")

READY_SCHEMA = {"type": "object", "properties": {"status": {"type": "string"},
                                                 "store": {"type": "string"},
                                                 "units": {"type": "string"}}}


def store_problem(store: Any) -> str | None:
    """None when the store answers; otherwise a short reason (no credentials)."""
    ping = getattr(store, "ping", None)
    if not callable(ping):
        return None
    try:
        ping()
    except Exception as exc:
        reason = redact_url(" ".join(str(exc).split())[:200]) or exc.__class__.__name__
        log.warning("readiness: store unusable: %s: %s", exc.__class__.__name__, reason)
        return f"{exc.__class__.__name__}: {reason}"
    return None


def install_operations(app: FastAPI, store: Any) -> None:
    """Add the access log (outermost), /health/live, /health/ready and /metrics."""
    app.add_middleware(AccessLog)

    @app.get("/health/live", tags=["operations"])
    def live() -> dict[str, str]:
        """The process is up and answering."""
        return {"status": "ok", "version": __version__}

    @app.get("/health/ready", tags=["operations"],
             responses={503: {"description": "Not ready: the store is unusable, or the unit "
                                             "registry is still being built (start-up)",
                              "content": {"application/json": {"schema": READY_SCHEMA}}}})
    def ready() -> JSONResponse:
        """Ready for traffic: the store answers and the unit registry is built."""
        problem = store_problem(store)
        if problem:
            return JSONResponse({"status": "unavailable", "store": problem}, status_code=503)
        if not units.loaded():
            return JSONResponse({"status": "starting", "store": "ok", "units": "loading"},
                                status_code=503)
        return JSONResponse({"status": "ok", "store": "ok", "units": "ok",
                             "version": __version__})

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}},
                              "description": "Prometheus text format"}})
    def metrics() -> Response:
        """Prometheus metrics of all the workers of this instance."""
        return metrics_response()
