"""Time hook calls in process: the example library, a large chart and Synthea patients.

    python examples/benchmark.py [--rounds 5] [--synthea FOLDER]

Prints per-input timings (median and worst of the rounds) and a summary. The CDS Hooks
specification asks services to answer "on the order of 500 ms"; this is where to look.
Nothing here is asserted: tests check behaviour, this script measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from build_examples import AS_OF, large_chart  # noqa: E402

from cds.bundle import hook_request_from_bundle  # noqa: E402
from cds.hooks import HookRequest  # noqa: E402
from cds.service import ThighPainService  # noqa: E402


def time_bundle(service: ThighPainService, bundle: dict, rounds: int) -> list[float]:
    body = json.dumps(hook_request_from_bundle(bundle, service.content))
    times = []
    for _ in range(rounds):  # what the HTTP handler does: decode, validate, call
        started = time.perf_counter()
        parsed = HookRequest.model_validate(json.loads(body))
        service.call("thigh-pain", parsed, as_of=AS_OF)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--synthea", type=Path, default=HERE / "synthea")
    args = parser.parse_args()
    service = ThighPainService()
    inputs: list[tuple[str, dict]] = [
        (p.stem, json.loads(p.read_text())) for p in sorted((HERE / "bundles").glob("*.json"))]
    inputs += [(f"large-{n}", large_chart(n).bundle("large")) for n in (1_000, 10_000)]
    inputs += [(f"synthea/{p.stem[:24]}", json.loads(p.read_text()))
               for p in sorted(args.synthea.glob("*.json"))]
    medians = []
    print(f"{'input':40} {'median ms':>10} {'worst ms':>10}")
    for name, bundle in inputs:
        times = time_bundle(service, bundle, args.rounds)
        medians.append(statistics.median(times))
        print(f"{name:40} {statistics.median(times):10.1f} {max(times):10.1f}")
    medians.sort()
    print(f"\n{len(inputs)} inputs x {args.rounds} rounds: median of medians "
          f"{statistics.median(medians):.1f} ms, p95 {medians[int(len(medians) * .95) - 1]:.1f} ms,"
          f" worst {medians[-1]:.1f} ms")


if __name__ == "__main__":
    main()
