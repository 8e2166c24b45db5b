"""The servers the HTTP benchmark compares, each run by uvicorn with one worker.

`bare_app` only decodes the body: the floor any Python JSON service pays, as the performance
issue states it (FastAPI as it comes). `settled_bare_app` is the same endpoint with the
garbage-collector settings the service gives itself at start-up (cds/heap.py): without them a
decode-only endpoint spends about a quarter of its CPU time, and nearly all of its p99, in the
collector's passes over FastAPI's heap (some 60 ms each), so this is the stricter floor.
`hook_app` is the real service (the same create_app as `cds serve`), pinned to the examples'
date.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from cds import heap


def bare_app() -> FastAPI:
    return _decode_only(FastAPI())


def settled_bare_app() -> FastAPI:
    return _decode_only(FastAPI(lifespan=heap.settled))


def _decode_only(app: FastAPI) -> FastAPI:
    @app.post("/cds-services/thigh-pain")
    async def decode_only(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(b'{"cards":[]}', media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def hook_app() -> FastAPI:
    from cds.api import create_app
    from cds.bench.inputs import as_of

    return create_app(as_of=as_of())
