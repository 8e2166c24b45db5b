"""Over HTTP: requests/s and latency of the hook endpoint against a bare FastAPI endpoint,
both served by uvicorn with one worker and loaded by `wrk` with 8 concurrent connections.

Each request carries a fresh hookInstance, as an EHR's would. The servers (cds.bench.apps:
bare, bare with the service's garbage-collector settings, hook) run side by side for the whole
comparison and short loads take turns between them, each round starting with the next one, so
that the minutes when a shared machine runs slow fall on all alike; the medians are reported,
with each server's CPU time per request, which wrk's own share of the machine does not blur.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cds.bench.inputs import HOOK_INSTANCE
from cds.logging_setup import logging_config

CONNECTIONS = 8
PATH = "/cds-services/thigh-pain"

# wrk's Lua: POST the body with a new hookInstance each time; print the figures we need.
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = f:read("*a")
f:close()
local at = string.find(body, "HOOK_INSTANCE", 1, true)
local head, tail = string.sub(body, 1, at - 1), string.sub(body, at + 36)
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local id = string.format("00000000-0000-4000-8000-%012d", n)
  return wrk.format(nil, nil, nil, head .. id .. tail)
end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write, errors.timeout))
end
""".replace("HOOK_INSTANCE", HOOK_INSTANCE)


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx answers, socket errors and timeouts
    requests: int = 0
    cpu_ms: float | None = None  # the server process's CPU per request (None: no /proc)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One uvicorn worker serving a factory from cds.bench.apps, on a free loopback port.
    `wrapper` runs it under another program (valgrind, for cds.bench.servercost), which may
    need `start_seconds` to start it."""

    def __init__(self, factory: str, workdir: Path, wrapper: Sequence[str] = (),
                 start_seconds: float = 60) -> None:
        self.port = _free_port()
        self.log = workdir / f"{factory}.log"
        env = dict(os.environ, CDS_DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}")
        env.pop("CDS_TRUST_FILE", None)
        logging = ["--log-level", "info"]  # uvicorn's access log: a line per request
        if factory == "hook_app":  # logged as `cds serve` logs: a cds.access line instead
            config = workdir / "logging.json"
            config.write_text(json.dumps(logging_config("info", "text")))
            logging += ["--log-config", str(config), "--no-access-log"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "uvicorn",
                 "--factory", f"cds.bench.apps:{factory}", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1", *logging],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        # the service is measured once ready (its unit registry built), not while it starts
        self.ready = "/health/ready" if factory == "hook_app" else "/health"
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                urllib.request.urlopen(f"{self.url}{self.ready}", timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{factory} did not start; see {self.log}") from None
                time.sleep(0.2)

    def check(self, body: bytes) -> None:
        """One call first: the benchmark measures answers, not errors."""
        req = urllib.request.Request(self.url + PATH, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as reply:
            if reply.status != 200:
                raise RuntimeError(f"{self.url}{PATH} answered HTTP {reply.status}")

    def cpu_seconds(self) -> float | None:
        """User and system CPU time of the server process so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def load(self, body: bytes, seconds: float, workdir: Path) -> Load:
        """wrk against this server, with the server's CPU time per request."""
        before = self.cpu_seconds()
        result = run_wrk(self.url, body, seconds, workdir)
        after = self.cpu_seconds()
        if before is None or after is None or not result.requests:
            return result
        return replace(result, cpu_ms=1000 * (after - before) / result.requests)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_wrk(url: str, body: bytes, seconds: float, workdir: Path) -> Load:
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(script), url + PATH],
        capture_output=True, text=True, env=dict(os.environ, BENCH_BODY=str(body_file)),
        check=True, timeout=seconds + 60)
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH "))
    requests, micros, p50, p99, status, sock, timeouts = (int(v) for v in line.split()[1:])
    return Load(requests / (micros / 1e6), p50 / 1000, p99 / 1000, status + sock + timeouts,
                requests)


KINDS = {"bare": "bare_app", "settled": "settled_bare_app", "hook": "hook_app"}


def compare(bodies: dict[str, bytes], rounds: int, seconds: float,
            ) -> dict[str, dict[str, list[Load]]]:
    """{body name: {kind: [...]}} for each kind of KINDS, one Load per round; round i of
    every kind ran back to back, starting with a different kind each round."""
    results: dict[str, dict[str, list[Load]]] = {
        name: {kind: [] for kind in KINDS} for name in bodies}
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        workdir = Path(tmp)
        servers: dict[str, Server] = {}
        try:
            for kind, factory in KINDS.items():
                servers[kind] = Server(factory, workdir)
            kinds = list(KINDS)
            for name, body in bodies.items():
                for server in servers.values():
                    server.check(body)
                    run_wrk(server.url, body, 1, workdir)  # warm up
                for round_ in range(rounds):
                    first = round_ % len(kinds)
                    for kind in kinds[first:] + kinds[:first]:
                        results[name][kind].append(servers[kind].load(body, seconds, workdir))
        finally:
            for server in servers.values():
                server.stop()
    return results
