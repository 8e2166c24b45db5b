"""Seen client token ids: the key the store keeps, and the per-process stand-in used only
while the shared store cannot be reached."""

from __future__ import annotations

import hashlib
import threading
import time


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
