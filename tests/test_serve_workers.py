"""`cds serve --workers 2` as operations would run it: JSON logs from every worker at the
configured level, and `/metrics` counting the hook calls made to either worker, whichever
worker answers the scrape. One real server on loopback, bounded in calls and time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fhir import condition, hook_request, patient
from tests.net import free_port

CDS = str(Path(sys.executable).with_name("cds"))
HOOK_ENDPOINT = "/cds-services/{service_id}"


class Server:
    def __init__(self, base: str, log: Path) -> None:
        self.base = base
        self.log = log

    def records(self) -> list[dict[str, Any]]:
        """Every complete line of the log, each of which must be a JSON object (a line a
        worker is still writing, without its newline yet, is left for the next read)."""
        complete = self.log.read_text().rpartition("\n")[0]
        return [json.loads(line) for line in complete.splitlines() if line]

    def wait_for(self, **fields: Any) -> dict[str, Any]:
        """The log record with these fields (written just after the response was sent)."""
        deadline = time.monotonic() + 10
        while True:
            found = [r for r in self.records() if all(r.get(k) == v for k, v in fields.items())]
            if found or time.monotonic() > deadline:
                assert found, f"no log line with {fields}"
                return found[0]
            time.sleep(0.05)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request on a new connection, so that either worker may accept it."""
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=30,
                                **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("workers")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDS_", "PROMETHEUS"))}
    env |= {"CDS_DATABASE_URL": f"sqlite:///{tmp}/feedback.sqlite3", "CDS_LOG_FORMAT": "json",
            "CDS_LOG_LEVEL": "debug", "TMPDIR": str(tmp)}
    log = tmp / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([CDS, "serve", "--port", str(port), "--workers", "2"],
                                env=env, cwd=tmp, stdout=sink, stderr=subprocess.STDOUT)
    served = Server(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if served.call("GET", "/health/ready").status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)  # not up yet, or not ready (its unit registry still loading)
        else:
            pytest.fail("cds serve did not become ready:\n" + log.read_text())
        yield served
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the workers' shared metrics folder goes when the service stops
    assert not list(tmp.glob("cds-metrics-*"))


def hook_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("logger") == "cds.access"
            and r.get("path") == "/cds-services/thigh-pain"]


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_metrics_count_hook_calls_made_to_either_worker(server: Server) -> None:
    made: list[dict[str, Any]] = []
    cards = 0

    def one_call() -> int:
        request = hook_request(condition("urinary_retention", onset_days=1))
        reply = server.call("POST", "/cds-services/thigh-pain", json=request)
        assert reply.status_code == 200, reply.text
        made.append(request)
        return len(reply.json()["cards"])

    # a few calls at once on new connections, until both workers have answered (bounded;
    # a call takes a few milliseconds, so on a busy machine one worker may win many rounds)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(40):
            cards += sum(pool.map(lambda _: one_call(), range(8)))
            if len({r["pid"] for r in hook_lines(server.records())}) == 2:
                break
    pids = {r["pid"] for r in hook_lines(server.records())}
    assert len(pids) == 2, f"all {len(made)} calls went to one worker"
    for request in made:  # each call is logged (and counted) just after its answer went out
        server.wait_for(request_id=request["hookInstance"])
    scrapes = [server.call("GET", "/metrics").text for _ in range(6)]
    for text in scrapes:  # whichever worker answered the scrape
        assert sample(text, "cds_requests_total", endpoint=HOOK_ENDPOINT,
                      service="thigh-pain", status="200") == len(made)
        assert sample(text, "cds_cards_total") == cards
        assert sample(text, "cds_cards_total", indicator="critical",
                      family="red-flag/cauda_equina") == len(made)
        assert sample(text, "cds_request_duration_seconds_count",
                      endpoint=HOOK_ENDPOINT) == len(made)


def test_every_worker_logs_json_with_the_hook_instance_as_request_id(server: Server) -> None:
    request = hook_request(condition("urinary_retention", rid="cond-secret"),
                           pt=patient(birth="1944-02-29", pid="pt-1"))
    request["prefetch"]["patient"]["name"] = [{"family": "Secretname"}]
    # (a token-named parameter such as access_token would be refused: tests/test_auth_faults.py)
    reply = server.call("POST", "/cds-services/thigh-pain?note=tok-SECRET",
                        json=request, headers={"Authorization": "Bearer jwt-SECRET"})
    assert reply.status_code == 200
    line = server.wait_for(request_id=request["hookInstance"])
    text = server.log.read_text()
    records = server.records()  # every line is one JSON object
    assert line["service"] == "thigh-pain" and line["status"] == 200
    assert line["cards"] == len(reply.json()["cards"]) and line["duration_ms"] > 0
    assert line["by_indicator"]["critical"] >= 1
    for secret in ("SECRET", "Secretname", "1944-02-29", "cond-secret", "pt-1"):
        assert secret not in text
    # CDS_LOG_LEVEL=debug reached every worker: a successful /health probe is logged at
    # DEBUG, so probe on new connections until each worker has answered one (bounded)
    worker_pids = {r["pid"] for r in hook_lines(records)}
    for _ in range(200):
        debug_pids = {r["pid"] for r in server.records() if r["level"] == "DEBUG"}
        if worker_pids <= debug_pids:
            break
        server.call("GET", "/health")
        time.sleep(0.01)
    assert worker_pids <= debug_pids


def test_feedback_outcomes_are_counted(server: Server) -> None:
    items = [{"card": "card-1", "outcome": "overridden", "outcomeTimestamp":
              "2026-11-24T10:00:00Z"},
             {"card": "card-2", "outcome": "accepted", "outcomeTimestamp":
              "2026-11-24T10:00:00Z", "acceptedSuggestions": [{"id": "s-1"}]}]
    for _ in range(2):  # the second time: resubmissions
        assert server.call("POST", "/cds-services/thigh-pain/feedback",
                           json={"feedback": items}).status_code == 200
    text = server.call("GET", "/metrics").text
    assert sample(text, "cds_feedback_total", outcome="accepted") == 2
    assert sample(text, "cds_feedback_resubmitted_total") == 2


def test_the_shared_socket_answers_small_requests_without_delay() -> None:
    """Workers accept on the socket `cds serve` binds: it must say TCP (asyncio then sets
    TCP_NODELAY per connection) and carry TCP_NODELAY itself, or every small response
    waits for a delayed ACK (about 40 ms a request with uvicorn's own socket)."""
    from cds.server import bind

    with bind("127.0.0.1", 0) as listener, socket.create_connection(
            listener.getsockname()[:2]):
        accepted, _ = listener.accept()
        with accepted:
            assert listener.proto == socket.IPPROTO_TCP
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
