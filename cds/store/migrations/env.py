"""Alembic environment: migrations run on the connection cds.store.migrate hands over, inside
its transaction (which already holds the migration lock)."""

from alembic import context

from cds.store.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
