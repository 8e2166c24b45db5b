"""Two `cds serve` processes on one database behave as one service, as N processes behind a
load balancer must: a client token used on one is refused by the other, and feedback posted to
either is counted once. Real processes on loopback ports, in trust mode; once on a shared
SQLite file and once on PostgreSQL (where its server binaries exist, as in CI)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from cds.cli import app as cli
from tests.fhir import condition, hook_request
from tests.net import free_port
from tests.tokens import bearer, client_token, write_trust

PUBLIC = "https://cds.hospital.test"  # what the load balancer answers as: aud of every token


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def _cds() -> list[str]:
    script = shutil.which("cds", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "cds.cli"]


def _serve(port: int, trust: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*_cds(), "serve", "--port", str(port), "--trust-file",
                                 str(trust), "--log-level", "info"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or listening but not serving
            time.sleep(0.1)
    pytest.fail(f"server did not start: {log.read_text()[-2000:]}")


def test_two_processes_share_token_ids_and_feedback(database: str, tmp_path: Path) -> None:
    env = {**os.environ, "CDS_DATABASE_URL": database}
    trust = write_trust(tmp_path, PUBLIC)
    ports = [free_port(), free_port()]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    servers = [_serve(port, trust, env, log) for port, log in zip(ports, logs, strict=True)]
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    hook = f"{PUBLIC}/cds-services/thigh-pain"
    try:
        _wait_until_up(a, servers[0], logs[0])
        _wait_until_up(b, servers[1], logs[1])
        request = hook_request(condition("urinary_retention", onset_days=1))
        token = client_token(hook)
        on_a = requests.post(f"{a}/cds-services/thigh-pain", json=request,
                             headers=bearer(token), timeout=30)
        assert on_a.status_code == 200, on_a.text
        replayed = requests.post(f"{b}/cds-services/thigh-pain", json=request,
                                 headers=bearer(token), timeout=30)
        assert replayed.status_code == 401
        fresh = requests.post(f"{b}/cds-services/thigh-pain", json=request,
                              headers=bearer(client_token(hook)), timeout=30)
        assert fresh.status_code == 200  # b accepts tokens: it refused the replay only

        card = on_a.json()["cards"][0]
        item = {"card": card["uuid"], "outcome": "overridden",
                "outcomeTimestamp": "2026-11-24T10:00:00Z"}
        replies = [requests.post(f"{base}/cds-services/thigh-pain/feedback",
                                 json={"feedback": [item]}, timeout=30,
                                 headers=bearer(client_token(f"{hook}/feedback")))
                   for base in (a, b)]  # the EHR retried through the other process
        assert [r.status_code for r in replies] == [200, 200]
        assert [r.json()["new"] for r in replies] == [1, 0]
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)  # graceful: queued bookkeeping is written
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    assert "jti replayed" in logs[1].read_text()
    report = CliRunner().invoke(cli, ["feedback", "--json", "--database-url", database])
    assert report.exit_code == 0, report.output
    card_type = card["extension"]["thigh-pain-cds"]["cardType"]
    assert json.loads(report.stdout) == [
        {"card_type": card_type, "accepted": 0, "overridden": 1}]
