"""Durable store for card feedback (accepted / overridden) and the cards we issued.

SQLite in WAL mode by default, PostgreSQL when CDS_DATABASE_URL is a postgresql:// URL (the
`postgres` extra installs psycopg). Either way a feedback is acknowledged only after its
transaction has committed, so a crash loses nothing that was acknowledged. Resubmitting the
same feedback is idempotent (same card, outcome, timestamp and suggestions are stored once).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


REPORT = """
SELECT COALESCE(i.card_type, 'unknown') AS card_type,
       SUM(CASE WHEN f.outcome = 'accepted' THEN 1 ELSE 0 END) AS accepted,
       SUM(CASE WHEN f.outcome = 'overridden' THEN 1 ELSE 0 END) AS overridden
FROM feedback f
LEFT JOIN issued_card i ON i.uuid = f.card
GROUP BY 1 ORDER BY 1
"""


def _feedback_rows(service: str, items: Iterable[Feedback], now: str) -> list[tuple[Any, ...]]:
    rows = []
    for fb in items:
        accepted = sorted(s.id for s in fb.acceptedSuggestions or ())
        reason = fb.overrideReason
        code = reason.reason.code if reason and reason.reason else None
        comment = reason.userComment if reason else None
        key = json.dumps([service, fb.card, fb.outcome, fb.outcomeTimestamp, accepted, code])
        fingerprint = hashlib.sha256(key.encode()).hexdigest()
        rows.append((fingerprint, service, fb.card, fb.outcome,
                     json.dumps(accepted) if accepted else None, code, comment,
                     fb.outcomeTimestamp, now))
    return rows


def _issued_rows(service: str, cards: Iterable[Card], now: str) -> list[tuple[Any, ...]]:
    rows = []
    for card in cards:
        ext = (card.extension or {}).get("thigh-pain-cds", {})
        rows.append((card.uuid, service, ext.get("cardType", "unknown"), card.indicator, now))
    return rows


def _report_rows(rows: Iterable[Any]) -> list[dict[str, object]]:
    return [{"card_type": r[0], "accepted": int(r[1] or 0), "overridden": int(r[2] or 0)}
            for r in rows]


def open_store(url: str) -> FeedbackStore | PostgresFeedbackStore:
    """The store a database URL names: sqlite:///path (default) or postgresql://…"""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresFeedbackStore(url)
    return FeedbackStore(url)


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
        rows = _issued_rows(service, cards, datetime.now(UTC).isoformat())
        conn = self._conn()
        conn.execute("BEGIN")
        conn.executemany("INSERT OR IGNORE INTO issued_card VALUES (?,?,?,?,?)", rows)
        conn.execute("COMMIT")

    def add(self, service: str, items: Iterable[Feedback]) -> int:
        """Store feedback atomically; returns how many were new."""
        now = datetime.now(UTC).isoformat()
        rows = _feedback_rows(service, items, now)
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
        return _report_rows(self._conn().execute(REPORT).fetchall())


class PostgresFeedbackStore:
    """The same store on PostgreSQL (psycopg 3); one connection per thread."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.psycopg = psycopg
        self._local = threading.local()
        with self._conn().transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn().execute(statement)

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.psycopg.connect(self.url, autocommit=True)
            self._local.conn = conn
        return conn

    def record_issued(self, service: str, cards: Iterable[Card]) -> None:
        rows = _issued_rows(service, cards, datetime.now(UTC).isoformat())
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO issued_card VALUES (%s,%s,%s,%s,%s) "
                            "ON CONFLICT DO NOTHING", rows)

    def add(self, service: str, items: Iterable[Feedback]) -> int:
        rows = _feedback_rows(service, items, datetime.now(UTC).isoformat())
        new = 0
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:
            for row in rows:
                cur.execute("INSERT INTO feedback VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                            "ON CONFLICT DO NOTHING", row)
                new += cur.rowcount
        return new

    def report(self) -> list[dict[str, object]]:
        return _report_rows(self._conn().execute(REPORT).fetchall())
