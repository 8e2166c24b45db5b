"""The two servers the HTTP benchmark compares, each run by uvicorn with one worker.

`bare_app` only decodes the body: the floor any Python JSON service pays. `hook_app` is the
real service (the same create_app as `cds serve`), pinned to the examples' date.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response


def bare_app() -> FastAPI:
    app = FastAPI()

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
