"""Schema migrations (Alembic, files in cds/store/migrations/versions), applied at start-up.

Several processes may start at the same moment on an empty database: each runs the upgrade
inside one transaction that first takes a lock (a PostgreSQL advisory lock; SQLite's write
lock through BEGIN IMMEDIATE), so one migrates and the others then find nothing to do.
Alembic is imported only when there is something to migrate (it costs a worker half a second
of start-up).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, inspect, select, text

from cds.store.engine import transaction

log = logging.getLogger("cds.store")
logging.getLogger("alembic").setLevel(logging.WARNING)  # we say what we migrate, once

HEAD = "0002"  # the newest file in migrations/versions (a test checks it is Alembic's head)
VERSION_TABLE = "cds_schema_version"
MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x6364_735F_6D69_6772  # "cds_migr": the advisory lock every process takes

_version = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False))


def version(conn: Connection) -> str | None:
    """The schema version of the database (None before the first migration)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(select(_version.c.version_num)).scalar()


def upgrade(engine: Engine, timeout: float = 60.0) -> None:
    """Bring the database to the newest version, once, whoever else is starting."""
    with transaction(engine, durable=False, timeout=timeout) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        before = version(conn)
        if before == HEAD:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        log.info("store schema migrated from version %s to %s", before or "(empty)", HEAD)
