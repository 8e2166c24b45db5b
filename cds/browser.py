"""The browser-facing parts of the service, mounted on the API app: the SMART app (always,
since EHRs launch it) and the clinician card view (in development mode, or when
CDS_VIEW_ENABLED is set: it is a review tool and has no login of its own).

Also tells card rendering the service's public address for the duration of each request, so
that `smart` links are absolute URLs an EHR can launch (CDS_PUBLIC_URL or the trust file's
public_url behind a proxy; otherwise the address the request came to).
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from cds.auth import TrustConfig
from cds.config import Settings
from cds.service import ThighPainService
from cds.smart.apps import public_base
from cds.smart.routes import build_router as smart_router
from cds.view.routes import build_router as view_router

HERE = Path(__file__).resolve().parent


class PublicBase:
    """ASGI middleware: set `public_base` for the request (see module docstring)."""

    def __init__(self, app: Any, fixed: str | None) -> None:
        self.app = app
        self.fixed = fixed.rstrip("/") if fixed else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = public_base.set(self.fixed or functools.partial(_request_base, scope))
        try:
            await self.app(scope, receive, send)
        finally:
            public_base.reset(token)


def _request_base(scope: Any) -> str:
    """The address the request came to (Starlette checks the Host header's form)."""
    return str(Request(scope).base_url).rstrip("/")


def view_enabled(settings: Settings, trust: TrustConfig) -> bool:
    return trust.development or settings.view_enabled


def mount_browser_apps(app: FastAPI, settings: Settings, service: ThighPainService,
                       store: Any, trust: TrustConfig, as_of: datetime | None = None) -> None:
    app.add_middleware(PublicBase, fixed=settings.public_url or trust.public_url)
    app.include_router(smart_router(service, settings.smart_client_id, as_of))
    if view_enabled(settings, trust):
        app.include_router(view_router(service, store, trust))
        app.mount("/view/static", StaticFiles(directory=HERE / "view" / "static"),
                  name="view-static")
    app.mount("/smart", StaticFiles(directory=HERE / "smart" / "static", html=True),
              name="smart-app")
