"""The store behaves the same on SQLite and PostgreSQL: feedback stored once and reported,
token ids accepted once across processes until they expire, pruning, migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cds.hooks import Card, Feedback
from cds.store import Store
from cds.store.bookkeeper import Bookkeeper, Row
from cds.store.migrate import HEAD, MIGRATIONS, VERSION_TABLE
from cds.store.schema import metadata

DAY = 86_400.0
Opener = Callable[..., Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind (PostgreSQL where its server binaries exist)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def stores() -> Iterator[Opener]:
    """Opens stores and closes them (their pooled connections) after the test."""
    opened: list[Store] = []

    def open_store(url: str, **options: Any) -> Store:
        opened.append(Store(url, **options))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def card(uuid: str, card_type: str) -> Card:
    return Card(uuid=uuid, summary="s", indicator="warning", source={"label": "x"},
                extension={"thigh-pain-cds": {"cardType": card_type}})


def test_feedback_is_stored_once_and_counted_per_card_type(url: str, stores: Opener) -> None:
    store = stores(url)
    store.record_issued("thigh-pain", [card("c-1", "dvt"), card("c-2", "differential")])
    assert store.flush()
    accepted = Feedback(card="c-1", outcome="accepted", acceptedSuggestions=[{"id": "s1"}],
                        outcomeTimestamp="2026-11-24T10:00:00Z")
    overridden = Feedback(card="c-2", outcome="overridden",
                          overrideReason={"userComment": "seen by orthopaedics"},
                          outcomeTimestamp="2026-11-24T10:01:00Z")
    assert store.add("thigh-pain", [accepted, overridden]) == 2
    assert store.add("thigh-pain", [accepted]) == 0  # the EHR retried
    assert store.report() == [
        {"card_type": "differential", "accepted": 0, "overridden": 1},
        {"card_type": "dvt", "accepted": 1, "overridden": 0},
    ]
    store.ping()
    store.close()


def test_a_token_id_is_accepted_once_by_every_process_until_it_expires(
        url: str, stores: Opener) -> None:
    now = [1_900_000_000.0]
    one, other = (stores(url, clock=lambda: now[0]) for _ in range(2))  # two processes' views
    assert one.remember_token("https://ehr.a", "jti-1", now[0] + 300)
    assert not other.remember_token("https://ehr.a", "jti-1", now[0] + 300)
    assert not one.remember_token("https://ehr.a", "jti-1", now[0] + 300)
    assert other.remember_token("https://ehr.b", "jti-1", now[0] + 300)  # another issuer's
    now[0] += 301  # the first token has expired: its id may come round again
    assert other.remember_token("https://ehr.a", "jti-1", now[0] + 300)
    assert not one.remember_token("https://ehr.a", "jti-1", now[0] + 300)


def test_a_token_replayed_after_100000_others_is_still_refused(url: str, stores: Opener) -> None:
    store = stores(url)
    expires = time.time() + 300
    assert store.remember_token("https://ehr.a", "first", expires)
    # 100,000 other live token ids, as many workers would record them in a few minutes
    with store.engine.begin() as conn:
        conn.execute(text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
            "INSERT INTO seen_token (token_key, issuer, expires_at) "
            "SELECT 'other-' || i, 'https://ehr.a', :expires FROM n"), {"expires": int(expires)})
        assert conn.execute(text("SELECT count(*) FROM seen_token")).scalar() == 100_001
    assert store.remember_token("https://ehr.a", "another", expires)
    assert not store.remember_token("https://ehr.a", "first", expires)


def test_pruning_drops_old_cards_and_expired_tokens_but_keeps_what_feedback_needs(
        url: str, stores: Opener) -> None:
    now = [1_900_000_000.0]
    store = stores(url, retention_days=90, clock=lambda: now[0])
    store.record_issued("thigh-pain", [card("old", "dvt"), card("old-with-feedback", "pe")])
    assert store.flush()
    store.add("thigh-pain", [Feedback(card="old-with-feedback", outcome="overridden",
                                      outcomeTimestamp="2026-11-24T10:00:00Z")])
    store.remember_token("https://ehr.a", "short-lived", now[0] + 60)
    now[0] += 89 * DAY
    store.record_issued("thigh-pain", [card("recent", "dvt")])
    store.remember_token("https://ehr.a", "alive", now[0] + 3 * DAY)
    assert store.flush()
    now[0] += 2 * DAY  # "old" is 91 days old, "recent" 2 days
    assert store.prune() == {"issued_cards": 1, "seen_tokens": 1}
    assert store.report() == [{"card_type": "pe", "accepted": 0, "overridden": 1}]
    assert not store.remember_token("https://ehr.a", "alive", now[0] + 300)
    assert store.prune() == {"issued_cards": 0, "seen_tokens": 0}


def test_schema_in_code_matches_the_migrations(url: str, stores: Opener) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    store = stores(url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]
    assert diff == [], "cds/store/schema.py changed without a migration"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


STARTER = """
import sys, time, pathlib
from cds.store import Store
from cds.store.bookkeeper import Bookkeeper, Row
folder = pathlib.Path(sys.argv[2])
(folder / f"ready-{sys.argv[3]}").touch()
while not (folder / "go").exists():
    time.sleep(0.005)
Store(sys.argv[1], create=True).ping()
"""


def test_processes_starting_together_on_an_empty_postgresql_both_come_up(
        postgres_url: str, tmp_path: Path, stores: Opener) -> None:
    """(On SQLite, BEGIN IMMEDIATE serialises them; the two `cds serve` test starts both.)"""
    url, count = postgres_url, 2
    starters = [subprocess.Popen([sys.executable, "-c", STARTER, url, str(tmp_path), str(i)],
                                 stderr=subprocess.PIPE, text=True) for i in range(count)]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        (tmp_path / "go").touch()  # all of them at once
        errors = [p.communicate(timeout=60)[1] for p in starters]
    finally:
        for p in starters:
            p.kill()
    assert [p.returncode for p in starters] == [0] * count, "\n".join(errors)
    stores(url).ping()  # at the newest version, migrated once


def test_a_database_from_before_migrations_is_adopted_with_its_rows(
        tmp_path: Path, stores: Opener) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:  # what the service created before it had migrations
        conn.executescript("""
            CREATE TABLE issued_card (uuid TEXT PRIMARY KEY, service TEXT NOT NULL,
                card_type TEXT NOT NULL, indicator TEXT NOT NULL, issued_at TEXT NOT NULL);
            CREATE TABLE feedback (fingerprint TEXT PRIMARY KEY, service TEXT NOT NULL,
                card TEXT NOT NULL, outcome TEXT NOT NULL, accepted TEXT, override_code TEXT,
                override_comment TEXT, outcome_timestamp TEXT NOT NULL,
                received_at TEXT NOT NULL);
            CREATE INDEX feedback_card ON feedback(card);
            INSERT INTO issued_card VALUES ('c-1', 'thigh-pain', 'dvt', 'warning',
                '2026-11-20T10:00:00+00:00');
            INSERT INTO feedback VALUES ('f', 'thigh-pain', 'c-1', 'overridden', NULL, NULL,
                NULL, '2026-11-20T10:05:00Z', '2026-11-20T10:05:01+00:00');
        """)
    store = stores(f"sqlite:///{db}")
    assert store.report() == [{"card_type": "dvt", "accepted": 0, "overridden": 1}]
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(HEAD,)]


def test_a_full_bookkeeping_queue_drops_counts_and_logs_without_blocking(
        caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    written: list[Row] = []

    def slow_write(rows: Sequence[Row]) -> None:  # a database that has stopped answering
        release.wait(10)
        written.extend(rows)

    keeper = Bookkeeper(slow_write, lambda: None, capacity=2, batch_rows=1)
    keeper.start()
    keeper.submit([{"n": 0}])
    deadline = time.monotonic() + 10
    while keeper.depth and time.monotonic() < deadline:  # the writer took it and hangs
        time.sleep(0.01)
    for n in range(1, 6):
        keeper.submit([{"n": n}])  # returns at once: 2 queued, 3 dropped
    assert keeper.dropped == 3
    assert "queue full" in caplog.text and "clinical answers are unaffected" in caplog.text
    release.set()
    assert keeper.flush()
    assert [row["n"] for row in written] == [0, 1, 2]
    keeper.close()


def test_retention_period_is_a_setting(monkeypatch: pytest.MonkeyPatch, service,
                                       tmp_path: Path) -> None:
    from cds.api import create_app
    from cds.config import Settings

    monkeypatch.setenv("CDS_ISSUED_RETENTION_DAYS", "30")
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}"),
                     service=service)
    assert app.state.store.retention.days == 30
    assert Settings().issued_retention_days == 30
