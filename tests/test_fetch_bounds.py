"""Fetching holds under a hostile or broken FHIR server: real servers on 127.0.0.1.

A server that trickles one byte at a time (in its headers or its body) costs a hook call at
most the call's deadline, and while such calls are cut off the service keeps answering others.
Names that resolve to cloud-metadata addresses are refused when the connection is made.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import uvicorn

from cds.api import create_app
from cds.config import Settings
from cds.content import Content
from cds.hooks import HookRequest
from cds.prefetch import FetchLimits, PreconditionFailed, gather
from cds.service import ThighPainService
from cds.units import convert
from tests.fhir import AS_OF, PATIENT_ID, hook_request
from tests.net import TrickleServer, free_port

DEADLINE = 1.5  # seconds: the call's budget for all its fetches


def _without_prefetch(server: str) -> dict:
    raw = hook_request(fhirServer=server, fhirAuthorization={
        "access_token": "tok", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "cds", "patient": PATIENT_ID})
    raw.pop("prefetch")
    return raw


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_trickling_server_costs_a_call_at_most_its_deadline(content: Content,
                                                              where: str) -> None:
    with TrickleServer(where, interval=0.05) as fhir:
        request = HookRequest.model_validate(_without_prefetch(fhir.url))
        started = time.monotonic()
        with pytest.raises(PreconditionFailed, match="time budget") as failure:
            gather(request, content, FetchLimits(total_seconds=DEADLINE))
        took = time.monotonic() - started
    print(f"\ntrickle in {where}: cut off after {took:.2f} s (deadline {DEADLINE} s)")
    assert "patient (" in str(failure.value)
    assert took < DEADLINE + 2.0  # the trickle would go on for days


@pytest.fixture
def slow_fetching_service(tmp_path: Path) -> Iterator[str]:
    """The HTTP service on loopback, with a short fetch deadline."""
    service = ThighPainService(limits=FetchLimits(total_seconds=3.0))
    convert(1.0, "mg/L", "g/L")  # the unit registry is loaded: calls start on the event loop
    # and must move to the hook threads when they find they have to fetch
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}"), service=service,
                     as_of=AS_OF)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_health_answers_while_40_trickling_calls_are_in_flight(slow_fetching_service: str
                                                                ) -> None:
    base = slow_fetching_service
    calls = 40
    with TrickleServer("headers", interval=0.2) as fhir, ThreadPoolExecutor(calls) as pool:
        request = _without_prefetch(fhir.url)

        def hook() -> tuple[int, float, str]:
            started = time.monotonic()
            reply = requests.post(f"{base}/cds-services/thigh-pain", json=request, timeout=30)
            return reply.status_code, time.monotonic() - started, reply.text

        pending = [pool.submit(hook) for _ in range(calls)]
        wait_until = time.monotonic() + 10
        while fhir.open < calls and time.monotonic() < wait_until:
            time.sleep(0.01)
        assert fhir.open == calls, "every call is held by the trickling server"
        started = time.monotonic()
        health = requests.get(f"{base}/health", timeout=10)
        health_ms = (time.monotonic() - started) * 1000
        in_flight = sum(not p.done() for p in pending)
        discovery = requests.get(f"{base}/cds-services", timeout=10)
        results = [p.result() for p in pending]
    slowest = max(took for _, took, _ in results)
    print(f"\n/health: {health_ms:.1f} ms with {in_flight} trickling calls in flight; "
          f"slowest hook call {slowest:.2f} s (deadline 3 s)")
    assert health.status_code == 200 and discovery.status_code == 200
    assert in_flight == calls  # /health answered while every call was still held
    assert all(status == 412 and "time budget" in text for status, _, text in results)
    assert slowest < 3.0 + 5.0  # each call ends near its deadline, not with the trickle


def test_a_server_that_refuses_connections_without_prefetch_is_412(client) -> None:
    closed = f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens there
    reply = client.post("/cds-services/thigh-pain", json=_without_prefetch(closed))
    assert reply.status_code == 412
    assert "patient (the FHIR server could not be reached)" in reply.json()["error"]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names this test resolves itself; everything else resolves as usual."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host in names:
            address = names[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return names


@pytest.mark.parametrize("address", ["169.254.169.254", "::ffff:169.254.169.254",
                                     "fe80::1", "fd00:ec2::254", "64:ff9b::a9fe:a9fe"])
def test_a_name_resolving_to_a_metadata_address_is_refused_at_connection(
        client, fake_dns, address) -> None:
    """Development mode allows any server by name; the name is judged by what it resolves
    to, when the connection is made, so the token never goes to a metadata endpoint."""
    fake_dns["fhir.rebinding.test"] = address
    reply = client.post("/cds-services/thigh-pain",
                        json=_without_prefetch("http://fhir.rebinding.test/r4"))
    assert reply.status_code == 412
    assert f"resolves to a link-local (cloud metadata) address ({address})" in reply.text or (
        f"resolves to a cloud metadata address ({address})" in reply.text)


def test_a_name_that_rebinds_after_the_check_is_judged_on_the_address_used(
        content, fake_dns) -> None:
    """The allowlist check does not resolve; the connection resolves once and uses that."""
    from cds.auth import fhir_server_allowed

    fake_dns["fhir.rebinding.test"] = "127.0.0.1"
    assert fhir_server_allowed("http://fhir.rebinding.test/r4", None)
    fake_dns["fhir.rebinding.test"] = "169.254.169.254"
    request = HookRequest.model_validate(_without_prefetch("http://fhir.rebinding.test/r4"))
    with pytest.raises(PreconditionFailed, match="link-local"):
        gather(request, content, FetchLimits(total_seconds=DEADLINE))


ALLOWED = ["https://fhir.hospital.example/r4", "http://127.0.0.1:3709", "https://fhir.other.example"]


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://fhir.hospital.example/r4", True),
    ("https://fhir.hospital.example/r4/", True),
    ("https://FHIR.hospital.example:443/r4/Patient", True),
    ("http://127.0.0.1:3709/fhir", True),
    ("https://fhir.other.example/r4", True),
    ("https://fhir.other.example.attacker.net/r4", False),  # a text prefix, another host
    ("http://127.0.0.1:37091/fhir", False),  # a text prefix, another port
    ("https://fhir.hospital.example/r4x", False),  # not on a segment boundary
    ("https://fhir.hospital.example/r", False),
    ("http://fhir.hospital.example/r4", False),  # another scheme
    ("https://fhir.hospital.example:8443/r4", False),
    ("https://user:pw@fhir.hospital.example/r4", False),  # userinfo
    ("https://fhir.hospital.example@evil.example/r4", False),
    ("https://fhir.hospital.example/r4/../admin", False),
    ("https://fhir.hospital.example/r4/%2e%2e/admin", False),
])
def test_allowed_fhir_servers_are_compared_parsed(url: str, allowed: bool) -> None:
    from cds.auth import TrustedIssuer, fhir_server_allowed

    issuer = TrustedIssuer(iss="https://ehr.example", fhir_servers=ALLOWED)
    assert fhir_server_allowed(url, issuer) is allowed


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8080/fhir", True),
    ("http://10.0.0.5/fhir", True),
    ("https://fhir.example.org/r4", True),  # a name: judged on what it resolves to
    ("http://169.254.169.254/latest/meta-data", False),
    ("http://[::ffff:169.254.169.254]/", False),
    ("http://[::ffff:a9fe:a9fe]/", False),
    ("http://[fe80::1]/", False),
    ("http://[fd00:ec2::254]/", False),
    ("http://0.0.0.0/", False),
    ("http://metadata.google.internal/", False),
    ("http://user@127.0.0.1:8080/fhir", False),
])
def test_development_mode_refuses_metadata_addresses_in_any_form(url: str,
                                                                 allowed: bool) -> None:
    from cds.auth import fhir_server_allowed

    assert fhir_server_allowed(url, None) is allowed


def test_trust_file_refuses_fhir_server_bases_with_userinfo() -> None:
    from pydantic import ValidationError

    from cds.auth import TrustedIssuer

    with pytest.raises(ValidationError, match="not an http"):
        TrustedIssuer(iss="https://ehr.example", fhir_servers=["https://u:p@fhir.example/r4"])
