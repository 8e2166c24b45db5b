"""The worker of `scripts/instructions.sh`: hook calls counted in instructions under valgrind's
callgrind, a figure a busy or noisy machine does not move (CPU time swings by half and more).

Start-up runs uninstrumented; once the service is ready and warm the worker writes `READY`,
the script turns instrumentation on and writes `GO`, and only the N calls are counted. Stage
`hook` is the whole in-process hook path (`cds.bench.inprocess.hook_path`), `parse` is
`orjson.loads` of the same body, to compare with.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import orjson

from cds.bench import inputs
from cds.bench.inprocess import hook_path, ready_service


def main(chart: str, calls: int, stage: str, signals: Path) -> None:
    service = ready_service()
    when = inputs.as_of()
    body = inputs.named_request(chart)
    for _ in range(5):
        hook_path(service, body, when)
    (signals / "READY").touch()
    while not (signals / "GO").exists():
        time.sleep(0.05)
    if stage == "hook":
        for _ in range(calls):
            hook_path(service, body, when)
    else:
        for _ in range(calls):
            orjson.loads(body)
    os._exit(0)  # counted up to here: no interpreter shutdown


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
