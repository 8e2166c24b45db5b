"""Refuse request bodies that are not Unicode text: lone UTF-16 surrogates.

JSON lets a client write `"\\ud800"` (or send the bytes of a surrogate, which Python's JSON
reader lets through): a string no UTF-8 response, log line or database can hold. Wherever such
a string went (a resource id cited on a card, a feedback comment) it would fail later with a
500, so a body containing one is refused up front with a 400 saying where. Surrogate *pairs*
(`"\\ud83d\\ude00"`, an emoji written as escapes) are text and pass.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from cds.asgi_replay import replaying

# a \uD800-\uDFFF escape that is really an escape (preceded by an even number of backslashes)
_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u([dD][89a-fA-F][0-9a-fA-F]{2})")
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")  # surrogates encoded as UTF-8


def lone_surrogate(body: bytes) -> int | None:
    """Byte offset of the first lone surrogate in a JSON body, or None if there is none."""
    # substring tests first (memchr-fast): almost every body has neither a surrogate's UTF-8
    # lead byte nor a \ud8..\udf escape, and the regular expressions are only run on those that do
    if b"\xed" in body:
        raw = _RAW_SURROGATE.search(body)
        if raw is not None:
            return raw.start()
    if b"\\ud" not in body and b"\\uD" not in body:
        return None
    high_end: int | None = None  # where a pending high surrogate escape ends
    for match in _ESCAPE.finditer(body):
        start, code = match.start(1) - 2, int(match.group(1), 16)
        if high_end is not None and (code < 0xDC00 or start != high_end):
            return high_end - 6  # a high surrogate not followed by its low half
        if code < 0xDC00:
            high_end = match.end()
        elif high_end is None:
            return start  # a low surrogate with no high half before it
        else:
            high_end = None
    return None if high_end is None else high_end - 6


def refusal(where: int) -> JSONResponse:
    """The 400 for a body with a lone surrogate at byte `where`."""
    return JSONResponse(status_code=400, content={
        "error": "request body is not valid Unicode text",
        "details": [f"a lone UTF-16 surrogate (\\ud800-\\udfff) at byte {where}"],
    })


def is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


class RefuseLoneSurrogates:
    """ASGI middleware, inside the body limit (which hands on the whole body at once).

    JSON bodies under `strict_json_under` are let through unread: the routes there decode
    with orjson, which refuses lone surrogates itself, and the API's 400 handler then answers
    with the same `refusal` (scanning a 60 KB chart here would cost a tenth of a hook call)."""

    def __init__(self, app: Any, strict_json_under: str | None = None) -> None:
        self.app = app
        self.strict_json_under = strict_json_under

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        if self.strict_json_under and scope["path"].startswith(self.strict_json_under) \
                and is_json(Headers(scope=scope).get("content-type", "")):
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "http.request" and not first.get("more_body", False):
            where = lone_surrogate(first.get("body", b""))
            if where is not None:
                await refusal(where)(scope, receive, send)
                return
        await self.app(scope, replaying(first, receive), send)
