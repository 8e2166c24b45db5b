"""Schema migrations (Alembic, files in cds/store/migrations/versions), applied at start-up.

Several processes may start at the same moment on an empty database: each runs the upgrade
inside one transaction that first takes a lock (a PostgreSQL advisory lock; SQLite's write
lock through BEGIN IMMEDIATE), so one migrates and the others then find nothing to do.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from cds.store.engine import transaction

log = logging.getLogger("cds.store")
logging.getLogger("alembic").setLevel(logging.WARNING)  # we say what we migrate, once

VERSION_TABLE = "cds_schema_version"
MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x6364_735F_6D69_6772  # "cds_migr": the advisory lock every process takes


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def head() -> str:
    """The newest schema version this code knows."""
    current = ScriptDirectory.from_config(_config()).get_current_head()
    assert current is not None
    return current


def version(conn: Connection) -> str | None:
    """The schema version of the database (None before the first migration)."""
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: Engine, timeout: float = 60.0) -> None:
    """Bring the database to the newest version, once, whoever else is starting."""
    with transaction(engine, durable=False, timeout=timeout) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        before = version(conn)
        if before == head():
            return
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        log.info("store schema migrated from version %s to %s", before or "(empty)", head())
