"""Peak memory of one hook call, measured in a fresh process so nothing else is counted.

    python -m cds.bench.memory BODY_FILE

Prints JSON: the resident set before and at peak (VmHWM, reset just before the call), and the
peak of Python allocations during the call (tracemalloc, in a second call).
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import tracemalloc
from pathlib import Path


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)


def main(path: str) -> None:
    from cds.bench.inprocess import hook_path
    from cds.bench.inputs import as_of, example_request
    from cds.service import ThighPainService

    service = ThighPainService()
    when = as_of()
    hook_path(service, example_request("dvt-likely"), when)  # imports and caches
    body = Path(path).read_bytes()
    gc.collect()
    before = _status_mb("VmRSS")
    _reset_peak()
    hook_path(service, body, when)
    peak = _status_mb("VmHWM")
    gc.collect()
    tracemalloc.start()
    hook_path(service, body, when)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    json.dump({"body_mb": len(body) / 1e6, "rss_before_mb": before, "rss_peak_mb": peak,
               "python_peak_mb": traced / 1e6}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
