"""`python -m cds.bench.servercost [CHART ...]`: what one HTTP request costs each server of the
HTTP comparison, counted by valgrind's callgrind with its cache model (`bash
scripts/instructions.sh --http`).

The timed comparison (cds.bench.load) is what the targets are stated in, but on a shared
machine its figures swing by half and more from one minute to the next. Here both of its
servers (bare and hook, cds.bench.apps) run under callgrind, 8 clients send each of them the
same requests (a fresh hookInstance each), and the server process's instructions and cache
misses over those requests are counted, with this machine's L1 and L2 as the simulated caches
(the L3 is shared with whatever else the host runs, and is left out).

Counting the misses matters: under load a hook call runs two to three times slower than the
same call repeated in process, because the request around it (socket reads, body copies, the
decoded chart) pushes the engine's code and data out of the caches. Instructions counted in
process (cds.bench.instructions) do not see that; an L2 miss costs tens of instructions' time.
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cds.bench import inputs
from cds.bench.load import CONNECTIONS, PATH, Server

WARM_UP = 2 * CONNECTIONS  # requests before counting: first calls fill the caches and plans


def _counted(requests: int) -> int:
    """The requests a load of `requests` sends: as many on each connection."""
    return requests // CONNECTIONS * CONNECTIONS


@dataclass(frozen=True)
class Caches:
    """Sizes in bytes, associativity and line size of the caches callgrind simulates."""

    l1d: tuple[int, int, int] = (32768, 8, 64)
    l1i: tuple[int, int, int] = (32768, 8, 64)
    l2: tuple[int, int, int] = (524288, 8, 64)

    @classmethod
    def of_this_machine(cls) -> Caches:
        """Read from Linux's /sys; the defaults (a common x86 core's) where it says nothing."""
        found: dict[str, tuple[int, int, int]] = {}
        for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            try:
                level = (index / "level").read_text().strip()
                kind = (index / "type").read_text().strip()
                size = (index / "size").read_text().strip()
                ways = int((index / "ways_of_associativity").read_text())
                line = int((index / "coherency_line_size").read_text())
                octets = int(size[:-1]) * 1024 if size.endswith("K") else int(size)
            except (OSError, ValueError):
                continue
            name = {("1", "Data"): "l1d", ("1", "Instruction"): "l1i",
                    ("2", "Unified"): "l2"}.get((level, kind))
            if name and ways > 0:
                found[name] = (octets, ways, line)
        return cls(**found)

    def valgrind_options(self) -> list[str]:
        return [f"--{name}={size},{ways},{line}" for name, (size, ways, line)
                in (("D1", self.l1d), ("I1", self.l1i), ("LL", self.l2))]


@dataclass(frozen=True)
class Cost:
    """Per request: instructions, L1 misses (instruction and data), L2 misses."""

    instructions: float
    l1_misses: float
    l2_misses: float


def _totals(out: Path) -> dict[str, int]:
    """The event totals of a callgrind dump (its `totals:` line; `summary:` can be 0)."""
    names: list[str] = []
    for line in out.read_text().splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("totals:"):
            return dict(zip(names, map(int, line.split()[1:]), strict=False))
    return {}


def _send(port: int, body: bytes, count: int) -> None:
    """`count` requests on one connection, each with a fresh hookInstance, as an EHR's."""
    marker = inputs.HOOK_INSTANCE.encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        for _ in range(count):
            connection.request("POST", PATH, body=body.replace(marker, str(uuid.uuid4()).encode()),
                               headers={"Content-Type": "application/json"})
            reply = connection.getresponse()
            reply.read()
            if reply.status != 200:
                raise RuntimeError(f"{PATH} answered HTTP {reply.status}")
    finally:
        connection.close()


def _load(port: int, body: bytes, requests: int) -> None:
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for done in [pool.submit(_send, port, body, requests // CONNECTIONS)
                     for _ in range(CONNECTIONS)]:
            done.result()


def measure(factory: str, bodies: dict[str, bytes], requests: int, caches: Caches,
            workdir: Path) -> dict[str, Cost]:
    """Start one server under callgrind, then count each body's requests in turn."""
    out = workdir / f"{factory}.callgrind"
    wrapper = ["env", "PYTHONHASHSEED=0", "valgrind", "--tool=callgrind", "--instr-atstart=no",
               "--cache-sim=yes", *caches.valgrind_options(), "--dump-instr=no",
               f"--callgrind-out-file={out}"]
    server = Server(factory, workdir, wrapper, start_seconds=900)
    pid = str(server.process.pid)
    costs = {}
    try:
        for name, body in bodies.items():
            _load(server.port, body, WARM_UP)
            subprocess.run(["callgrind_control", "--zero", pid], check=True,
                           capture_output=True)
            subprocess.run(["callgrind_control", "--instr=on", pid], check=True,
                           capture_output=True)
            _load(server.port, body, requests)
            subprocess.run(["callgrind_control", "--instr=off", pid], check=True,
                           capture_output=True)
            subprocess.run(["callgrind_control", "--dump", pid], check=True,
                           capture_output=True)
            dumped = max(workdir.glob(f"{factory}.callgrind.*"),
                         key=lambda p: p.stat().st_mtime_ns)
            t = _totals(dumped)
            dumped.unlink()
            per = _counted(requests)
            costs[name] = Cost(t.get("Ir", 0) / per,
                               sum(t.get(e, 0) for e in ("I1mr", "D1mr", "D1mw")) / per,
                               sum(t.get(e, 0) for e in ("ILmr", "DLmr", "DLmw")) / per)
    finally:
        server.stop()
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m cds.bench.servercost", description=__doc__)
    parser.add_argument("charts", nargs="*", default=["100", "dvt-likely"],
                        help="numbers of Observations or example scenarios")
    parser.add_argument("--requests", type=int, default=96, help="counted per body and server")
    args = parser.parse_args()
    bodies = {chart: inputs.named_request(chart) for chart in args.charts}
    caches = Caches.of_this_machine()
    results: dict[str, dict[str, Cost]] = {}
    with tempfile.TemporaryDirectory(prefix="cds-servercost-") as tmp:
        def run(kind: str, factory: str) -> None:
            results[kind] = measure(factory, bodies, args.requests, caches, Path(tmp))

        threads = [threading.Thread(target=run, args=pair)
                   for pair in (("bare", "bare_app"), ("hook", "hook_app"))]
        for thread in threads:  # side by side: a core each on a 2-core machine
            thread.start()
        for thread in threads:
            thread.join()
    if set(results) != {"bare", "hook"}:
        print("a server failed to start under valgrind; see the logs above", file=sys.stderr)
        return 1
    kb = lambda n: f"{n // 1024} KB"  # noqa: E731
    print(f"| chart | server | instructions | L1 misses | L2 misses |  (per request; "
          f"L1 {kb(caches.l1d[0])} + {kb(caches.l1i[0])}, L2 {kb(caches.l2[0])})")
    print("|---|---|---:|---:|---:|")
    for chart in bodies:
        bare, hook = results["bare"][chart], results["hook"][chart]
        for kind, c in (("bare", bare), ("hook", hook)):
            print(f"| {chart} | {kind} | {c.instructions:,.0f} | {c.l1_misses:,.0f} "
                  f"| {c.l2_misses:,.0f} |")
        print(f"| {chart} | **hook / bare** | {hook.instructions / bare.instructions:.2f}x | "
              f"{hook.l1_misses / bare.l1_misses:.2f}x | {hook.l2_misses / bare.l2_misses:.2f}x |")
    print(f"\n{_counted(args.requests)} requests per chart and server from "
          f"{CONNECTIONS} connections, after {WARM_UP} uncounted; callgrind's cache model.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
