"""Connecting to the configured database: the one place where SQLite and PostgreSQL differ.

Every transaction is opened by `transaction()`, which always commits or rolls back (the
driver's real error is what gets reported, never a failed rollback), and says how it should
behave: `durable` transactions (feedback) reach the disk before they commit (SQLite WAL with
`synchronous=FULL`; PostgreSQL's default), bookkeeping ones (issued cards, seen tokens) may
lose their last milliseconds on a power cut but not on a process crash (`synchronous=NORMAL`;
`synchronous_commit=off`). `timeout` bounds how long a transaction waits for a lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool


class StoreUnavailable(Exception):
    """The store cannot be used right now (down, locked, full, corrupted or unreachable)."""


class NoSuchDatabase(StoreUnavailable):
    """The configured database does not exist (and we were asked not to create it)."""


def describe(exc: BaseException) -> str:
    """The driver's own error in one line, without SQL parameters (they may hold comments
    that clinicians typed)."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else 'no message'}"


def database_url(url: str) -> URL:
    """SQLAlchemy's URL for a CDS_DATABASE_URL: sqlite:///path or postgresql://… (psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or "
                         "postgresql://USER@HOST/DB")
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names (None for an in-memory database or another backend)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


def connect(url: URL, timeout: float) -> Engine:
    """An engine whose transactions follow the rules in this module's docstring."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, timeout)
    return _postgres_engine(url, timeout)


def _sqlite_engine(url: URL, timeout: float) -> Engine:
    connect_args = {"timeout": timeout, "check_same_thread": False}
    if sqlite_file(url) is None:  # in memory (tests, docs): one connection, one database
        engine = create_engine(url, poolclass=StaticPool, connect_args=connect_args)
    else:
        engine = create_engine(url, pool_size=8, max_overflow=24, pool_timeout=timeout,
                               connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # we issue BEGIN ourselves (below), so that writers take the lock up front
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchall()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        wanted = ("FULL" if options.get("durable", True) else "NORMAL",
                  int(options.get("timeout", timeout) * 1000))
        if conn.info.get("sqlite_settings") != wanted:  # per connection, kept while pooled
            conn.exec_driver_sql(f"PRAGMA synchronous={wanted[0]}")
            conn.exec_driver_sql(f"PRAGMA busy_timeout={wanted[1]}")
            conn.info["sqlite_settings"] = wanted
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("write", True) else "BEGIN")

    return engine


def _postgres_engine(url: URL, timeout: float) -> Engine:
    # at most 12 connections a process: N processes need N x 12 of max_connections
    engine = create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8,
                           pool_timeout=timeout,
                           connect_args={"connect_timeout": max(1, round(timeout))})

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        millis = int(options.get("timeout", timeout) * 1000)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {millis}")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {millis * 4}")
        if not options.get("durable", True):
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")

    return engine


@contextmanager
def transaction(engine: Engine, *, durable: bool = True, write: bool = True,
                timeout: float | None = None) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back on any error.

    Database errors come out as StoreUnavailable with the driver's message."""
    options: dict[str, Any] = {"durable": durable, "write": write, "preserve_rowcount": True}
    if timeout is not None:
        options["timeout"] = timeout
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**options)
            with conn.begin():
                yield conn
    except SQLAlchemyError as exc:
        raise StoreUnavailable(describe(exc)) from exc
