"""One log line and one metrics sample per HTTP request (the service's access log).

The line carries method, path (never the query string, which may hold a token), status,
duration and, for hook calls, what the handler adds with `annotate`: the hookInstance as
request_id, the service, card counts. Never patient data: handlers annotate with counts and
ids the EHR generated for the call, nothing from the chart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds.api_metrics import observe_request

log = logging.getLogger("cds.access")

_FIELDS_KEY = "cds_log_fields"
# probed every few seconds by load balancers and Prometheus: logged at DEBUG when they succeed
_QUIET = {"/health", "/health/live", "/health/ready", "/metrics"}


def annotate(request: Request, **fields: Any) -> None:
    """Add fields to this request's access-log line (ids and counts only, never PHI)."""
    request.scope.setdefault(_FIELDS_KEY, {}).update(fields)


class AccessLog:
    """ASGI middleware: time the request, then log it and count it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception:
            status = 500
            raise
        finally:
            try:
                self._record(scope, status, time.perf_counter() - started)
            except Exception:  # the answer has gone out; never turn it into an error
                log.exception("access log failed")

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        service_id = (scope.get("path_params") or {}).get("service_id")
        observe_request(endpoint, service_id, status, seconds)
        fields: dict[str, Any] = scope.get(_FIELDS_KEY) or {}
        millis = round(seconds * 1000, 1)
        path = scope.get("path", "")
        extra = {"method": scope.get("method"), "path": path, "status": status,
                 "duration_ms": millis, **fields}
        shown = " ".join(f"{k}={v}" for k, v in fields.items())
        level = logging.WARNING if status >= 500 else logging.INFO
        if endpoint in _QUIET and status < 400:
            level = logging.DEBUG
        log.log(level, "%s %s %d %.1fms %s", scope.get("method"), path, status, millis, shown,
                extra=extra)
