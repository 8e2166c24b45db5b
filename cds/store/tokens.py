"""Seen client token ids, so that a JWT is accepted once by every process on the database.

A primary key decides atomically which process saw a token first. While the database cannot
be reached, each process falls back to its own memory (logged and counted) so that clinical
answers go on; a replay to another process is then not caught until the database is back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, bindparam

from cds.store.engine import StoreUnavailable, transaction
from cds.store.schema import seen_token

log = logging.getLogger("cds.store")

RETRY_SECONDS = 5.0  # how long a failing database is left alone by the request path


def token_key(issuer: str, jti: str) -> str:
    """Fixed-size key for (issuer, jti): a jti is whatever the client chose, of any length."""
    return hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()


class LocalSeenTokens:
    """Token keys this process has seen, each kept until it expires (never evicted earlier;
    the size is bounded by the request rate times the longest token lifetime)."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def remember(self, key: str, expires_at: float, now: float | None = None) -> bool:
        """True if the key is new (or its earlier token has expired)."""
        now = time.time() if now is None else now
        with self._lock:
            if now >= self._next_sweep:
                self._expiry = {k: e for k, e in self._expiry.items() if e >= now}
                self._next_sweep = now + 60
            seen = self._expiry.get(key)
            if seen is not None and seen >= now:
                return False
            self._expiry[key] = expires_at
            return True

    def __contains__(self, key: str) -> bool:
        with self._lock:
            seen = self._expiry.get(key)
            return seen is not None and seen >= time.time()


class SeenTokens:
    """Token ids in the shared database, kept until the token expires (then pruned)."""

    def __init__(self, engine: Engine, insert: Any, *, clock: Callable[[], float],
                 timeout: float, ready: Callable[[], None]) -> None:
        """`insert` is the dialect's INSERT on seen_token (it has ON CONFLICT); `ready`
        raises StoreUnavailable until the schema is migrated."""
        self._engine = engine
        self._clock = clock
        self._timeout = timeout
        self._ready = ready
        insert = insert.values(token_key=bindparam("key"), issuer=bindparam("issuer"),
                               expires_at=bindparam("expires_at"))
        # a row whose token has expired may be reused; a live one may not
        self._upsert = insert.on_conflict_do_update(
            index_elements=[seen_token.c.token_key],
            set_={"expires_at": insert.excluded.expires_at, "issuer": insert.excluded.issuer},
            where=seen_token.c.expires_at < bindparam("now"))
        self._local = LocalSeenTokens()
        self._retry_at = 0.0
        self.checked_locally = 0

    def remember(self, issuer: str, jti: str, expires_at: float) -> bool:
        """True the first time (issuer, jti) is seen while it lives, False for a replay."""
        key = token_key(issuer, jti)
        if time.monotonic() >= self._retry_at:
            try:
                new = self._remember_in_database(key, issuer, expires_at)
            except StoreUnavailable as exc:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                log.error("token replay check falls back to this process for %.0f s: %s",
                          RETRY_SECONDS, exc)
            else:  # seen here while the database was down: still a replay
                return new and key not in self._local
        self.checked_locally += 1
        return self._local.remember(key, expires_at, self._clock())

    def _remember_in_database(self, key: str, issuer: str, expires_at: float) -> bool:
        self._ready()
        values = {"key": key, "issuer": issuer, "expires_at": math.ceil(expires_at),
                  "now": int(self._clock())}
        with transaction(self._engine, durable=False, timeout=self._timeout) as conn:
            return bool(conn.execute(self._upsert, values).rowcount == 1)
