"""`python -m cds.bench`: print the benchmark's tables (Markdown, ready for the README)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from cds.bench import inprocess, inputs, load

SIZES = (10, 100, 1_000, 10_000)
TARGETS = {10: None, 100: 8.0, 1_000: 3.0, 10_000: 3.0}


def _in_process(scale: float) -> None:
    service = inprocess.ready_service()
    when = inputs.as_of()
    print("\n## In process: hook path / orjson.loads of the same body (CPU ms)\n")
    print("| chart | body | orjson.loads ms | hook path ms | ratio | target | rounds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    per_obs = []
    for n in SIZES:
        body = inputs.chart_request(n)
        r = inprocess.measure(f"{n} Observations", body, inprocess.rounds_for(len(body), scale),
                              service, when)
        target = TARGETS[n]
        print(f"| {r.name} | {r.size / 1000:,.0f} KB | {r.parse_ms:.3f} | {r.hook_ms:.3f} | "
              f"{r.ratio:.1f}x | {f'≤ {target:g}x' if target else '-'} | {r.rounds} |",
              flush=True)
        per_obs.append((n, r.hook_ms, r.parse_ms))
    (n1, t1, p1), (n2, t2, p2) = per_obs[-2], per_obs[-1]
    print(f"\nLinearity, {n2:,} vs {n1:,} Observations ({n2 // n1}x the data): the hook path "
          f"costs {t2 / t1:.1f}x, its cost beyond the parse {(t2 - p2) / (t1 - p1):.1f}x, "
          f"the parse alone {p2 / p1:.1f}x.")


def _library(rounds: int) -> None:
    service = inprocess.ready_service()
    when = inputs.as_of()
    print("\n## In process, per input: example library and Synthea patients\n")
    print("| input | body | median ms | worst ms |")
    print("|---|---:|---:|---:|")
    medians = []
    for name, body in inputs.library():
        inprocess.hook_path(service, body, when)
        times = []
        for _ in range(rounds):
            gc.collect()
            started = time.perf_counter()
            inprocess.hook_path(service, body, when)
            times.append((time.perf_counter() - started) * 1000)
        medians.append(statistics.median(times))
        print(f"| {name} | {len(body) / 1000:,.0f} KB | {medians[-1]:.2f} | {max(times):.2f} |")
    print(f"\n{len(medians)} inputs x {rounds} rounds: median of medians "
          f"{statistics.median(medians):.2f} ms, worst {max(medians):.2f} ms.")


def _http(rounds: int, seconds: float) -> None:
    print(f"\n## Over HTTP: uvicorn, 1 worker, wrk with {load.CONNECTIONS} connections\n")
    if not load.wrk_available():
        print("wrk is not installed, so the HTTP comparison was not run. "
              "`bash scripts/benchmark.sh` installs it (apt-get, as root).")
        return
    bodies = {"100 Observations": inputs.chart_request(100),
              "dvt-likely (10 KB)": inputs.example_request("dvt-likely")}
    results = load.compare(bodies, rounds, seconds)
    print("| body | endpoint | requests/s | p50 ms | p99 ms | server CPU ms/request | failed |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, by_kind in results.items():
        medians: dict[str, tuple[float, float, float, float | None]] = {}
        for kind, loads in by_kind.items():
            cpus = [x.cpu_ms for x in loads if x.cpu_ms is not None]
            medians[kind] = (statistics.median(x.requests_per_s for x in loads),
                             statistics.median(x.p50_ms for x in loads),
                             statistics.median(x.p99_ms for x in loads),
                             statistics.median(cpus) if cpus else None)
            rps, p50, p99, cpu = medians[kind]
            print(f"| {name} | {_LABELS[kind]} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | "
                  f"{'-' if cpu is None else f'{cpu:.2f}'} | {sum(x.failed for x in loads)} |")
        for floor in ("bare", "settled"):
            print(_ratio_row(name, by_kind, medians, floor))
    print(f"\nMedians of {rounds} rounds of {seconds:g} s per server; the servers run side by "
          "side and the loads take turns between them. Targets on 100 Observations: hook at "
          "least 50% of bare, p99 under 20 ms. \"settled\" is the bare endpoint with the "
          "garbage-collector settings the service gives itself (cds/heap.py): the stricter "
          "floor.")


_LABELS = {"bare": "bare (decode only)", "settled": "bare, GC settled (cds/heap.py)",
           "hook": "hook"}


def _ratio_row(name: str, by_kind: dict[str, list[load.Load]],
               medians: dict[str, tuple[float, float, float, float | None]], floor: str) -> str:
    """The hook's medians as a ratio to one floor's, with the spread round by round."""
    (frps, fp50, fp99, fcpu), (hrps, hp50, hp99, hcpu) = medians[floor], medians["hook"]
    pairs = sorted(h.requests_per_s / f.requests_per_s
                   for f, h in zip(by_kind[floor], by_kind["hook"], strict=True))
    spread = (f" ({100 * pairs[0]:.0f}–{100 * pairs[-1]:.0f}% round by round)"
              if len(pairs) > 1 else "")
    cpu_ratio = "-" if fcpu is None or hcpu is None else f"{hcpu / fcpu:.1f}x"
    label = "hook / bare" if floor == "bare" else "hook / bare, GC settled"
    return (f"| {name} | **{label}** | **{100 * hrps / frps:.0f}%**{spread} | "
            f"{hp50 / fp50:.1f}x | {hp99 / fp99:.1f}x | {cpu_ratio} | |")


def _memory() -> None:
    print("\n## Peak memory, 10,000-Observation chart (fresh process)\n")
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        tmp.write(inputs.chart_request(10_000))
        tmp.flush()
        out = subprocess.run([sys.executable, "-m", "cds.bench.memory", tmp.name],
                             capture_output=True, text=True, check=True)
    m = json.loads(out.stdout)
    print("| body | RSS before call | RSS peak | added by the call | Python allocations peak |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {m['body_mb']:.1f} MB | {m['rss_before_mb']:.0f} MB | {m['rss_peak_mb']:.0f} MB "
          f"| {m['rss_peak_mb'] - m['rss_before_mb']:.0f} MB | {m['python_peak_mb']:.0f} MB |")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m cds.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds and shorter loads (a smoke run, noisier figures)")
    parser.add_argument("--only", choices=["inprocess", "library", "http", "memory"],
                        action="append", help="run only these parts (repeatable)")
    parser.add_argument("--http-rounds", type=int, default=6)
    parser.add_argument("--http-seconds", type=float, default=3.0)
    args = parser.parse_args()
    parts = args.only or ["inprocess", "http", "memory", "library"]
    scale = 0.2 if args.quick else 1.0
    print(f"# Benchmark: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("Figures are medians; ratios are taken within the same run (absolute times vary "
          "with the machine's load).")
    try:
        if "inprocess" in parts:
            _in_process(scale)
        if "http" in parts:
            _http(1 if args.quick else args.http_rounds, 2.0 if args.quick else args.http_seconds)
        if "memory" in parts:
            _memory()
        if "library" in parts:
            _library(3 if args.quick else 10)
    except inputs.MissingExamples as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
