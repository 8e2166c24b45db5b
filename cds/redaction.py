"""Keep bearer tokens out of logs: a logging.Filter that redacts them wherever they appear.

A token sent in a URL's query string (`?access_token=…`) would otherwise be printed by
uvicorn's access log with the request line. The service refuses such requests (401, see
cds.request_auth), and this filter makes sure the token is not written down on the way: it
rewrites token-named query parameters and anything shaped like a JWT, in the message and in
its arguments.
"""

from __future__ import annotations

import logging
import re
from typing import Any

TOKEN_PARAMETERS = ("access_token", "id_token", "token", "jwt", "bearer", "authorization")
QUERY_TOKEN = re.compile(r"(?i)\b(" + "|".join(TOKEN_PARAMETERS) + r")=[^&\s\"']*")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
REDACTED = "[redacted]"
# loggers that may print a request line or an Authorization value
LOGGERS = ("uvicorn.access", "uvicorn.error", "cds")


def redact(text: str) -> str:
    return JWT.sub(REDACTED, QUERY_TOKEN.sub(rf"\1={REDACTED}", text))


class RedactTokens(logging.Filter):
    """Rewrites a record's message and arguments so that no bearer token is logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        return True


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def install_token_redaction() -> None:
    """Attach the filter to the loggers that could print a token (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
