"""In process: the whole hook path (decode, validate, reason, render) against `orjson.loads`
of the same body, interleaved round by round so that a busy machine slows both alike.

Times are the CPU time of the measuring thread (garbage collection included), which other
processes on a shared machine disturb far less than wall-clock time."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

from cds import heap, units
from cds.hooks import HookRequest
from cds.service import ThighPainService


def ready_service() -> ThighPainService:
    """The service as `cds serve` has it once /health/ready says so: its unit registry built
    (a background thread builds it at start-up, for about a second of CPU that would compete
    with the first calls timed) and the heap settled (cds.heap)."""
    service = ThighPainService()
    units.convert(1.0, "mg/L", "g/L")  # a conversion waits for the registry
    heap.settle()
    return service


def hook_path(service: ThighPainService, body: bytes, as_of: datetime | None) -> bytes:
    """What the HTTP handler (cds.api) does with a body: decode, validate, call, encode."""
    request = HookRequest.model_validate(orjson.loads(body))
    response, _ = service.call("thigh-pain", request, as_of=as_of)
    return orjson.dumps(response.wire())


@dataclass(frozen=True)
class Ratio:
    name: str
    size: int  # body bytes
    parse_ms: float  # median
    hook_ms: float  # median
    rounds: int

    @property
    def ratio(self) -> float:
        return self.hook_ms / self.parse_ms if self.parse_ms else float("inf")


def _once(fn: Callable[[], object]) -> float:
    gc.collect()  # every measurement starts from the same heap
    started = time.thread_time()
    fn()
    return (time.thread_time() - started) * 1000


def measure(name: str, body: bytes, rounds: int, service: ThighPainService,
            as_of: datetime | None) -> Ratio:
    hook_path(service, body, as_of)  # warm caches
    parse, hook = [], []
    for _ in range(rounds):
        parse.append(_once(lambda: orjson.loads(body)))
        hook.append(_once(lambda: hook_path(service, body, as_of)))
    return Ratio(name, len(body), statistics.median(parse), statistics.median(hook), rounds)


def rounds_for(size: int, scale: float) -> int:
    """Enough rounds for a stable median: up to 300 for small charts, 5 for the largest."""
    return max(5, min(300, int(scale * 20_000_000 / max(size, 1))))
