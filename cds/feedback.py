"""Moved to cds.store (one store over SQLite and PostgreSQL); kept for old imports."""

from cds.store import NoSuchDatabase, Store, StoreUnavailable, open_store

FeedbackStore = Store
PostgresFeedbackStore = Store

__all__ = ["FeedbackStore", "NoSuchDatabase", "PostgresFeedbackStore", "Store",
           "StoreUnavailable", "open_store"]
