"""The feedback store on PostgreSQL: same behaviour as SQLite (idempotent, report per card
type). Starts a throwaway PostgreSQL cluster on a loopback port when the server binaries are
installed (Debian package `postgresql`), otherwise skips and says why."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from cds.hooks import Card, Feedback
from tests.net import free_port


def _binaries() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="install the 'postgres' extra")
    bindir = _binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = tempfile.mkdtemp(prefix="cds-pg-")
    os.chmod(data, 0o777)
    port = free_port()
    subprocess.run([*as_postgres, f"{bindir}/initdb", "-D", f"{data}/db", "-U", "cds",
                    "--auth=trust"], check=True, capture_output=True)
    server = subprocess.Popen([*as_postgres, f"{bindir}/postgres", "-D", f"{data}/db",
                               "-p", str(port), "-k", data, "-c", "listen_addresses=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql://cds@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.monotonic() + 20
    while True:
        try:
            psycopg.connect(url).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                server.kill()
                pytest.skip("PostgreSQL did not start")
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=10)
    shutil.rmtree(data, ignore_errors=True)


def test_postgres_store_is_idempotent_and_reports(postgres_url):
    from cds.feedback import open_store

    store = open_store(postgres_url)
    card = Card(uuid="card-1", summary="s", indicator="warning", source={"label": "x"},
                extension={"thigh-pain-cds": {"cardType": "dvt"}})
    store.record_issued("thigh-pain", [card])
    item = Feedback(card="card-1", outcome="accepted", acceptedSuggestions=[{"id": "s1"}],
                    outcomeTimestamp="2026-11-24T10:00:00Z")
    assert store.add("thigh-pain", [item]) == 1
    assert store.add("thigh-pain", [item]) == 0
    assert store.report() == [{"card_type": "dvt", "accepted": 1, "overridden": 0}]
