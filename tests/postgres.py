"""A throwaway PostgreSQL cluster on a loopback port, for the tests that need a real server.

Needs the server binaries (Debian package `postgresql`; scripts/test.sh installs it in CI)
and psycopg (the `postgres` extra); tests skip and say why when either is missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.net import free_port


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


class PostgresServer:
    """One cluster (trust authentication, user `cds`) that tests may stop and start again."""

    def __init__(self, bindir: str, as_postgres: list[str]) -> None:
        self.bindir = bindir
        self.as_postgres = as_postgres
        self.data = tempfile.mkdtemp(prefix="cds-pg-")
        os.chmod(self.data, 0o777)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run([*as_postgres, f"{bindir}/initdb", "-D", f"{self.data}/db", "-U", "cds",
                        "--auth=trust", "--no-sync"], check=True, capture_output=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://cds@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        import psycopg

        self.process = subprocess.Popen(
            [*self.as_postgres, f"{self.bindir}/postgres", "-D", f"{self.data}/db",
             "-p", str(self.port), "-k", self.data, "-c", "listen_addresses=127.0.0.1",
             "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.skip("PostgreSQL did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # fast shutdown: disconnects clients (SIGTERM would wait for them)
            subprocess.run([*self.as_postgres, f"{self.bindir}/pg_ctl", "-D",
                            f"{self.data}/db", "stop", "-m", "fast", "-w", "-t", "10"],
                           capture_output=True)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def fresh_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def postgres_server() -> Iterator[PostgresServer]:
    """Fixture body: a running server for the session, or a skip saying what is missing."""
    pytest.importorskip("psycopg", reason="install the 'postgres' extra")
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    server = PostgresServer(bindir, as_postgres)
    try:
        server.start()
        yield server
    finally:
        server.remove()
