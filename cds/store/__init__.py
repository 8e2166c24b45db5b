"""Shared state of the service (feedback, issued cards, seen token ids) in SQLite or
PostgreSQL, with migrations. See cds/store/store.py."""

from cds.store.engine import NoSuchDatabase, StoreUnavailable
from cds.store.store import Store, open_store

__all__ = ["NoSuchDatabase", "Store", "StoreUnavailable", "open_store"]
