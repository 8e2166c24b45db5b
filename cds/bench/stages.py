"""`python -m cds.bench.stages [N | SCENARIO ...]`: where the in-process hook path spends its time.

Prints the median CPU microseconds of each stage of one hook call (decode, validate, gather
the prefetched resources, build the record, assess the rules, render and encode the cards,
free what the call made) for charts of N Observations (default 10, 100 and 1,000) or for an
example scenario (such as `dvt-likely`, whose answer has more cards), so that
work on one stage can be measured on its own. The ratios the targets are stated in come from
`python -m cds.bench`.
"""

from __future__ import annotations

import statistics
import sys
import time

import orjson

from cds.bench import inputs
from cds.bench.inprocess import ready_service
from cds.cards import CardContext, render_cards
from cds.hooks import HookRequest, HookResponse
from cds.prefetch import gather
from cds.reasoning.assessment import assess
from cds.service import ThighPainService

STAGES = ("decode", "validate", "gather", "build", "assess", "render", "encode", "free")


def stage_times(service: ThighPainService, body: bytes, rounds: int) -> dict[str, float]:
    """Median CPU µs per stage over `rounds` calls."""
    when = inputs.as_of()
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    clock = time.thread_time
    for _ in range(rounds):
        marks = [clock()]
        raw = orjson.loads(body)
        marks.append(clock())
        request = HookRequest.model_validate(raw)
        marks.append(clock())
        data = gather(request, service.content, service.limits, None)
        marks.append(clock())
        record = service.builder.build(request.context.patientId, data.resources, data.missing,
                                       when, None)
        marks.append(clock())
        assessment = assess(service.content, record, False)
        marks.append(clock())
        context = CardContext(str(request.hookInstance), request.context.patientId,
                              request.context.userId, [], False)
        cards = render_cards(assessment, service.content, context)
        marks.append(clock())
        orjson.dumps(HookResponse(cards=cards).wire())
        marks.append(clock())
        # free this call's objects here, as the service does when a call ends, rather than
        # in the next round's stages (rebinding would charge it to decode, validate, ...)
        del raw, request, data, record, assessment, context, cards
        marks.append(clock())
        for stage, started, ended in zip(STAGES, marks[:-1], marks[1:], strict=True):
            times[stage].append((ended - started) * 1e6)
    return {stage: statistics.median(values) for stage, values in times.items()}


def main() -> int:
    charts = sys.argv[1:] or ["10", "100", "1000"]
    service = ready_service()
    print("| chart | " + " | ".join(STAGES) + " | engine (gather..encode) |")
    print("|---" * (len(STAGES) + 2) + "|")
    for chart in charts:
        n = int(chart) if chart.isdigit() else 0
        body = inputs.named_request(chart)
        name = f"{n:,} Observations" if chart.isdigit() else chart
        stage_times(service, body, 20)  # warm up
        t = stage_times(service, body, 300 if n <= 100 else 30)
        engine = sum(t[s] for s in STAGES[2:-1])
        print(f"| {name} | " + " | ".join(f"{t[s]:,.0f}" for s in STAGES)
              + f" | {engine:,.0f} |")
    print("\nMedian CPU µs per stage and call; `free` is releasing the call's objects at its "
          "end (mostly the decoded chart, which any JSON service pays).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
