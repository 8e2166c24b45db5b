"""Prometheus metrics: requests, latency, cards, fetches and feedback, for every worker.

Under `cds serve` each worker writes its samples to PROMETHEUS_MULTIPROC_DIR
(prometheus-client's multiprocess mode) and `/metrics` adds them up, so a scrape that reaches
any worker counts the calls made to all of them. Without that variable (tests, an embedding
application) the metrics live in the process's default registry.

Label values are bounded: endpoints are route templates, services the known service ids,
card families the `cardType` of the clinical content. Nothing from a patient is a label.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.responses import Response

from cds.hooks import Card, Feedback
from cds.service import SERVICES, CallStats

EXTENSION_KEY = "thigh-pain-cds"
log = logging.getLogger("cds.metrics")
F = TypeVar("F", bound=Callable[..., None])


def never_fails(observe: F) -> F:
    """Bookkeeping never fails a clinical answer: a metric that cannot be written (say, the
    multiprocess folder's disk is full) is logged and skipped."""

    @functools.wraps(observe)
    def safe(*args: Any, **kwargs: Any) -> None:
        try:
            observe(*args, **kwargs)
        except Exception as exc:
            log.warning("metrics not recorded: %s: %s", exc.__class__.__name__, exc)

    return safe  # type: ignore[return-value]

REQUESTS = Counter("cds_requests", "HTTP requests answered, by endpoint, service and status",
                   ["endpoint", "service", "status"])
LATENCY = Histogram("cds_request_duration_seconds", "Time to answer an HTTP request",
                    ["endpoint", "service"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
CARDS = Counter("cds_cards", "Cards returned, by indicator and card family (cardType)",
                ["indicator", "family"])
FETCHES = Counter("cds_fetches", "Prefetch keys the service had to fetch from the FHIR "
                  "server in a hook call, by outcome (fetched, missing)", ["outcome"])
FEEDBACK = Counter("cds_feedback", "Feedback items received, by outcome (accepted, overridden)",
                   ["outcome"])
FEEDBACK_RESUBMITTED = Counter("cds_feedback_resubmitted",
                               "Feedback items received again and stored once")


def service_label(service_id: str | None) -> str:
    if service_id is None:
        return ""
    return service_id if service_id in SERVICES else "unknown"


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once: label values are bounded (module docstring),
    and prometheus-client's own lookup checks and locks on every call."""
    return metric.labels(*labels)


@never_fails
def observe_request(endpoint: str, service_id: str | None, status: int,
                    seconds: float) -> None:
    service = service_label(service_id)
    _child(REQUESTS, endpoint, service, str(status)).inc()
    _child(LATENCY, endpoint, service).observe(seconds)


@never_fails
def observe_hook(cards: Iterable[Card], stats: CallStats) -> None:
    for card in cards:
        family = (card.extension or {}).get(EXTENSION_KEY, {}).get("cardType", "unknown")
        _child(CARDS, card.indicator, str(family)).inc()
    if stats.fetched:
        FETCHES.labels("fetched").inc(len(stats.fetched))
    if stats.missing:
        FETCHES.labels("missing").inc(len(stats.missing))


@never_fails
def observe_feedback(items: Sequence[Feedback], new: int) -> None:
    """`new` of the items were stored; the others had been received before."""
    for item in items:
        FEEDBACK.labels(item.outcome).inc()
    if len(items) > new:
        FEEDBACK_RESUBMITTED.inc(len(items) - new)


def metrics_response() -> Response:
    """The Prometheus text exposition of all workers' metrics (or this process's)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
