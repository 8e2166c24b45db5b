"""The service's shared state, one implementation over SQLite and PostgreSQL (SQLAlchemy Core).

- Feedback: acknowledged only after its transaction commits durably; a resubmission of the
  same feedback is stored once.
- Issued cards: recorded off the request path (cds.store.bookkeeper), kept for the retention
  period (and as long as feedback refers to them, so the report keeps its card types).
- Seen token ids: kept until the token expires, shared by every process on the database, so a
  client JWT is accepted once by the whole deployment (cds.store.tokens).

A store that cannot be used raises StoreUnavailable with the driver's error; it recovers by
itself when the database does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, case, delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite

from cds.store import migrate
from cds.store.bookkeeper import Bookkeeper, Row
from cds.store.engine import (
    NoSuchDatabase,
    StoreUnavailable,
    connect,
    database_url,
    sqlite_file,
    transaction,
)
from cds.store.schema import feedback, issued_card, seen_token
from cds.store.tokens import SeenTokens

if TYPE_CHECKING:
    from cds.hooks import Card, Feedback

log = logging.getLogger("cds.store")

PRUNE_BATCH = 5_000
RETRY_SECONDS = 5.0  # a failed migration is retried after this long
REQUEST_PATH_TIMEOUT = 1.0  # at most this long a token check or ping waits for a lock


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def feedback_row(service: str, item: Feedback, received_at: str) -> Row:
    accepted = sorted(s.id for s in item.acceptedSuggestions or ())
    reason = item.overrideReason
    code = reason.reason.code if reason and reason.reason else None
    key = json.dumps([service, item.card, item.outcome, item.outcomeTimestamp, accepted, code])
    return {
        "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
        "service": service, "card": item.card, "outcome": item.outcome,
        "accepted": json.dumps(accepted) if accepted else None, "override_code": code,
        "override_comment": reason.userComment if reason else None,
        "outcome_timestamp": item.outcomeTimestamp, "received_at": received_at,
    }


def issued_row(service: str, card: Card, issued_at: str) -> Row:
    ext = (card.extension or {}).get("thigh-pain-cds", {})
    return {"uuid": card.uuid, "service": service, "card_type": ext.get("cardType", "unknown"),
            "indicator": card.indicator, "issued_at": issued_at}


class Store:
    """Feedback, issued cards and seen token ids in the database a URL names."""

    def __init__(self, url: str, *, create: bool = True, retention_days: int = 90,
                 timeout: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.url = database_url(url)
        file = sqlite_file(self.url)
        if file is not None and not file.exists():
            if not create:
                raise NoSuchDatabase(f"no feedback database at {file}")
            file.parent.mkdir(parents=True, exist_ok=True)
        self.path = str(file) if file is not None else None
        self.retention = timedelta(days=retention_days)
        self._clock = clock
        self._quick = min(timeout, REQUEST_PATH_TIMEOUT)
        self.engine = connect(self.url, timeout)
        self._insert: Callable[[Table], postgresql.Insert | sqlite.Insert] = (
            postgresql.insert if self.url.get_backend_name() == "postgresql" else sqlite.insert)
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._schema_retry_at = 0.0
        self._schema_error = ""
        self._tokens = SeenTokens(self.engine, self._insert(seen_token), clock=clock,
                                  timeout=self._quick, ready=self._ensure_schema)
        self._bookkeeper = Bookkeeper(self._write_issued, self.prune)
        try:
            self._ensure_schema()
        except StoreUnavailable:
            if not create:
                raise
            # the service still starts: feedback gets 503 and readiness says why until the
            # database answers (`cds serve` checks it before listening: see cds/preflight.py)

    def describe(self) -> str:
        """The database, without its password (for logs)."""
        return self.url.render_as_string(hide_password=True)

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            if time.monotonic() < self._schema_retry_at:
                raise StoreUnavailable(self._schema_error)
            try:
                migrate.upgrade(self.engine)
            except StoreUnavailable as exc:
                self._schema_retry_at = time.monotonic() + RETRY_SECONDS
                self._schema_error = str(exc)
                raise
            self._schema_ready = True

    # ------------------------------------------------------------ feedback

    def add(self, service: str, items: Iterable[Feedback]) -> int:
        """Store feedback durably; returns how many items were new."""
        received_at = _timestamp(datetime.fromtimestamp(self._clock(), UTC))
        rows = [feedback_row(service, item, received_at) for item in items]
        self._ensure_schema()
        new = 0
        with transaction(self.engine) as conn:
            for row in rows:
                new += conn.execute(
                    self._insert(feedback).values(row).on_conflict_do_nothing()).rowcount
        return new

    def report(self) -> list[dict[str, object]]:
        """Acceptance and override counts per card type."""
        card_type = func.coalesce(issued_card.c.card_type, "unknown").label("card_type")
        query = (
            select(card_type,
                   func.sum(case((feedback.c.outcome == "accepted", 1), else_=0)),
                   func.sum(case((feedback.c.outcome == "overridden", 1), else_=0)))
            .select_from(feedback.outerjoin(issued_card, issued_card.c.uuid == feedback.c.card))
            .group_by(card_type).order_by(card_type))
        self._ensure_schema()
        with transaction(self.engine, write=False) as conn:
            rows = conn.execute(query).all()
        return [{"card_type": r[0], "accepted": int(r[1] or 0), "overridden": int(r[2] or 0)}
                for r in rows]

    # ------------------------------------------------------------ issued cards

    def start(self) -> None:
        """Start the background writer (issued cards, pruning); the service calls this."""
        self._bookkeeper.start()

    def record_issued(self, service: str, cards: Iterable[Card]) -> None:
        """Queue the cards of one answer for the record; never blocks, never raises."""
        issued_at = _timestamp(datetime.fromtimestamp(self._clock(), UTC))
        self._bookkeeper.start()
        self._bookkeeper.submit([issued_row(service, card, issued_at) for card in cards])

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the issued cards queued so far are written (or dropped)."""
        return self._bookkeeper.flush(timeout)

    def _write_issued(self, rows: Sequence[Row]) -> None:
        self._ensure_schema()
        with transaction(self.engine, durable=False) as conn:
            conn.execute(self._insert(issued_card).on_conflict_do_nothing(), list(rows))

    def prune(self) -> dict[str, int]:
        """Delete issued cards past the retention period (unless feedback refers to them)
        and seen token ids that have expired, in small transactions."""
        self._ensure_schema()
        now = self._clock()
        cutoff = _timestamp(datetime.fromtimestamp(now, UTC) - self.retention)
        old_cards = (
            select(issued_card.c.uuid)
            .where(issued_card.c.issued_at < cutoff,
                   ~exists().where(feedback.c.card == issued_card.c.uuid))
            .limit(PRUNE_BATCH).with_for_update(skip_locked=True)  # several processes prune
            .correlate(None).scalar_subquery())
        expired = (select(seen_token.c.token_key).where(seen_token.c.expires_at < int(now))
                   .limit(PRUNE_BATCH).with_for_update(skip_locked=True)
                   .correlate(None).scalar_subquery())
        pruned = {
            "issued_cards": self._delete_in_batches(
                delete(issued_card).where(issued_card.c.uuid.in_(old_cards))),
            "seen_tokens": self._delete_in_batches(
                delete(seen_token).where(seen_token.c.token_key.in_(expired))),
        }
        if any(pruned.values()):
            log.info("pruned %d issued cards older than %d days and %d expired token ids",
                     pruned["issued_cards"], self.retention.days, pruned["seen_tokens"])
        return pruned

    def _delete_in_batches(self, statement: Any) -> int:
        total = 0
        while True:
            with transaction(self.engine, durable=False) as conn:
                count = conn.execute(statement).rowcount
            total += count
            if count < PRUNE_BATCH:
                return total

    # ------------------------------------------------------------ seen token ids

    def remember_token(self, issuer: str, jti: str, expires_at: float) -> bool:
        """True the first time a token id is seen while it lives, False for a replay
        (shared by every process on the database; see cds.store.tokens)."""
        return self._tokens.remember(issuer, jti, expires_at)

    # ------------------------------------------------------------ health

    def ping(self) -> None:
        """Raise StoreUnavailable, saying why, unless the store can take writes now."""
        self._ensure_schema()
        with transaction(self.engine, timeout=self._quick) as conn:
            current = migrate.version(conn)
        if current != migrate.HEAD:
            raise StoreUnavailable(f"schema version {current}, this service needs "
                                   f"{migrate.HEAD}")

    def stats(self) -> dict[str, int]:
        """Counters for metrics: issued cards written and dropped, queue depth, token
        checks done in this process only because the store was down."""
        return {"issued_written": self._bookkeeper.written,
                "issued_dropped": self._bookkeeper.dropped,
                "issued_queued": self._bookkeeper.depth,
                "tokens_checked_locally": self._tokens.checked_locally}

    def close(self) -> None:
        """Write what is queued, stop the writer, close connections."""
        self._bookkeeper.close()
        self.engine.dispose()


def open_store(url: str, *, create: bool = True, retention_days: int = 90) -> Store:
    """The store a database URL names: sqlite:///path (default) or postgresql://…

    With create=False a database that does not exist is an error (NoSuchDatabase) rather
    than a new empty one."""
    return Store(url, create=create, retention_days=retention_days)
