"""A sick database never costs a clinician their cards: with the store locked, full or
corrupted, hook calls still answer with cards (issued-card bookkeeping is dropped, counted and
logged with the real error), feedback gets a clear 503, readiness says the store is down, and
everything recovers without a restart once the database does."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from cds.api import create_app
from cds.auth import load_trust
from cds.config import Settings
from cds.store import Store
from tests.fhir import AS_OF, condition, hook_request
from tests.tokens import bearer, client_token, write_trust

PUBLIC = "https://cds.test"
Repair = Callable[[], None]


def lock(store: Store, db: Path) -> Repair:
    """Another process holds the write lock."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    return other.close


def fill(store: Store, db: Path) -> Repair:
    """No room for the database to grow (as on a full disk)."""

    def no_growth(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute("PRAGMA max_page_count=1")  # clamped to the current size

    event.listen(store.engine, "connect", no_growth)
    store.engine.dispose()

    def repair() -> None:
        event.remove(store.engine, "connect", no_growth)
        store.engine.dispose()

    return repair


def corrupt(store: Store, db: Path) -> Repair:
    """The file is overwritten with garbage (restored from a copy afterwards)."""
    store.engine.dispose()  # the last connection closes: the WAL is folded into the file
    good = db.read_bytes()
    db.write_bytes(b"this is not a database " * 400)

    def repair() -> None:
        db.write_bytes(good)
        store.engine.dispose()

    return repair


FAULTS = {  # fault: (how, the driver's error we expect in the log, does readiness see it)
    "locked": (lock, "database is locked", True),
    "full": (fill, "database or disk is full", False),
    "corrupted": (corrupt, "file is not a database", True),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_clinicians_get_cards_while_the_store_is_down_and_feedback_recovers(
        fault: str, service, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    breaks, error, readiness_sees_it = FAULTS[fault]
    db = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{db}", timeout=0.3)
    app = create_app(Settings(database_url=f"sqlite:///{db}"), service=service, store=store,
                     as_of=AS_OF, trust=load_trust(write_trust(tmp_path, PUBLIC)))
    hook = f"{PUBLIC}/cds-services/thigh-pain"
    request = hook_request(condition("urinary_retention", onset_days=1))
    long_comment = "patient already seen by the spinal team this morning; " * 100

    def feedback(card: str) -> Any:
        item = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z",
                "overrideReason": {"userComment": long_comment}}
        return client.post("/cds-services/thigh-pain/feedback", json={"feedback": [item]},
                           headers=bearer(client_token(f"{hook}/feedback")))

    with TestClient(app) as client:
        assert client.get("/health/ready").status_code == 200
        written_before = (store.flush(), store.stats()["issued_written"])[1]
        repair = breaks(store, db)
        try:
            token = client_token(hook)
            answer = client.post("/cds-services/thigh-pain", json=request, headers=bearer(token))
            assert answer.status_code == 200
            cards = answer.json()["cards"]
            assert cards[0]["indicator"] == "critical"
            # the token check fell back to this process: a replay here is still refused
            assert client.post("/cds-services/thigh-pain", json=request,
                               headers=bearer(token)).status_code == 401
            refused = feedback(cards[0]["uuid"])
            assert refused.status_code == 503
            assert "feedback store unavailable" in refused.json()["error"]
            if readiness_sees_it:
                not_ready = client.get("/health/ready")
                assert not_ready.status_code == 503
                assert error in not_ready.json()["store"]
            store.flush()
        finally:
            repair()
        assert feedback(cards[0]["uuid"]).status_code == 200  # no restart needed
        assert client.get("/health/ready").status_code == 200
        again = client.post("/cds-services/thigh-pain", json=hook_request(),
                            headers=bearer(client_token(hook)))
        assert again.status_code == 200
        store.flush()
        assert store.stats()["issued_written"] > written_before
    assert error in caplog.text  # the real error, not a failed rollback
    assert "cannot rollback" not in caplog.text
    assert long_comment not in caplog.text
    if fault != "full":  # (small issued-card rows may still fit in a full file)
        assert "cards not recorded" in caplog.text and store.stats()["issued_dropped"] > 0
    stored = store.report()
    assert sum(int(row["overridden"]) for row in stored) == 1, "the refused one is not stored"


def test_postgresql_going_away_and_coming_back(postgres, service) -> None:
    url = postgres.fresh_database()
    store = Store(url, timeout=1.0)
    app = create_app(Settings(database_url=url), service=service, store=store,
                     as_of=AS_OF)
    item = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:00:00Z"}
    with TestClient(app) as client:
        assert client.post("/cds-services/thigh-pain/feedback",
                           json={"feedback": [item]}).status_code == 200
        postgres.stop()
        try:
            answer = client.post("/cds-services/thigh-pain",
                                 json=hook_request(condition("urinary_retention")))
            assert answer.status_code == 200 and answer.json()["cards"]
            assert client.post("/cds-services/thigh-pain/feedback",
                               json={"feedback": [item]}).status_code == 503
            assert client.get("/health/ready").status_code == 503
        finally:
            postgres.start()
        reply = client.post("/cds-services/thigh-pain/feedback", json={"feedback": [item]})
        assert reply.status_code == 200 and reply.json()["new"] == 0  # stored once, before
        assert client.get("/health/ready").status_code == 200
