"""Durable store for card feedback (accepted / overridden) and the cards we issued.

SQLite in WAL mode by default: a feedback is acknowledged only after its transaction has
committed, so a crash loses nothing that was acknowledged. Resubmitting the same feedback is
idempotent (same card, outcome, timestamp and suggestions are stored once).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from cds.hooks import Card, Feedback

SCHEMA = """
CREATE TABLE IF NOT EXISTS issued_card (
    uuid TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    card_type TEXT NOT NULL,
    indicator TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    fingerprint TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL,
    accepted TEXT,
    override_code TEXT,
    override_comment TEXT,
    outcome_timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback(card);
"""


def sqlite_path(url: str) -> str:
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///") or ":memory:"
    if url.startswith("sqlite://"):
        return url.removeprefix("sqlite://") or ":memory:"
    raise ValueError(f"not a sqlite URL: {url!r}")


class FeedbackStore:
    """SQLite-backed; one connection per thread, WAL, synchronous=FULL for durability."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def record_issued(self, service: str, cards: Iterable[Card]) -> None:
        now = datetime.now(UTC).isoformat()
        rows = []
        for card in cards:
            ext = (card.extension or {}).get("thigh-pain-cds", {})
            rows.append((card.uuid, service, ext.get("cardType", "unknown"), card.indicator, now))
        conn = self._conn()
        conn.execute("BEGIN")
        conn.executemany("INSERT OR IGNORE INTO issued_card VALUES (?,?,?,?,?)", rows)
        conn.execute("COMMIT")

    def add(self, service: str, items: Iterable[Feedback]) -> int:
        """Store feedback atomically; returns how many were new."""
        now = datetime.now(UTC).isoformat()
        rows = []
        for fb in items:
            accepted = sorted(s.id for s in fb.acceptedSuggestions or ())
            reason = fb.overrideReason
            code = reason.reason.code if reason and reason.reason else None
            comment = reason.userComment if reason else None
            key = json.dumps([service, fb.card, fb.outcome, fb.outcomeTimestamp, accepted, code])
            fingerprint = hashlib.sha256(key.encode()).hexdigest()
            rows.append((fingerprint, service, fb.card, fb.outcome, json.dumps(accepted) if
                         accepted else None, code, comment, fb.outcomeTimestamp, now))
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?,?,?,?,?)", rows)
            new = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return new

    def report(self) -> list[dict[str, object]]:
        """Acceptance and override counts per card type."""
        rows = self._conn().execute(
            """
            SELECT COALESCE(i.card_type, 'unknown') AS card_type,
                   COUNT(DISTINCT i2.uuid) AS issued,
                   SUM(f.outcome = 'accepted') AS accepted,
                   SUM(f.outcome = 'overridden') AS overridden
            FROM feedback f
            LEFT JOIN issued_card i ON i.uuid = f.card
            LEFT JOIN issued_card i2 ON i2.card_type = i.card_type
            GROUP BY 1 ORDER BY 1
            """
        ).fetchall()
        return [
            {"card_type": r[0], "issued": r[1], "accepted": r[2] or 0, "overridden": r[3] or 0}
            for r in rows
        ]

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
