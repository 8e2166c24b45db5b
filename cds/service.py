"""The service as the EHR sees it: discovery, and one hook call from request to cards.

HTTP (cds.api) and the command line (cds.cli) both call this, so a replayed bundle gets
exactly the cards an EHR would.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cds.cards import CardContext, render_cards
from cds.content import Content, default_content
from cds.hooks import DiscoveryResponse, HookRequest, HookResponse, ServiceDefinition
from cds.prefetch import FetchLimits, gather, prefetch_keys
from cds.reasoning.assessment import assess
from cds.record import RecordBuilder
from cds.terminology import Terminology
from cds.units import warm_up

log = logging.getLogger(__name__)

SERVICES = {
    "thigh-pain": "patient-view",
    "thigh-pain-encounter": "encounter-start",
}


_RESOURCE_REF = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]+: ")

class UnknownService(LookupError):
    pass


class WrongHook(ValueError):
    pass


@dataclass(frozen=True)
class CallStats:
    cards: int
    by_indicator: dict[str, int]
    fetched: list[str]
    missing: list[str]
    skipped: int
    millis: float
    resources: int = 0  # resources received, of every type
    used: int = 0  # facts the rules could use
    skipped_notes: tuple[str, ...] = ()


class ThighPainService:
    def __init__(self, content: Content | None = None, limits: FetchLimits | None = None,
                 always_answer: bool = False) -> None:
        self.content = content or default_content()
        warm_up()  # the UCUM registry, in the background: no hook call waits for it
        self.terminology = Terminology.from_content(self.content)
        self.builder = RecordBuilder(self.content, self.terminology)
        self.limits = limits or FetchLimits()
        self.always_answer = always_answer
        self.prefetch = {
            hook: {k.key: k.template for k in prefetch_keys(self.content, hook)}
            for hook in set(SERVICES.values())
        }

    def discovery_ids(self) -> set[str]:
        return set(SERVICES)

    def discovery(self) -> DiscoveryResponse:
        texts = self.content.texts
        return DiscoveryResponse(services=[
            ServiceDefinition(
                hook=hook,
                id=service_id,
                title=texts.service_title,
                description=texts.service_description,
                prefetch=self.prefetch[hook],
                usageRequirements=texts.usage_requirements,
            )
            for service_id, hook in SERVICES.items()
        ])

    def call(self, service_id: str, request: HookRequest, as_of: datetime | None = None,
             allow_server: Callable[[str], bool] | None = None,
             ) -> tuple[HookResponse, CallStats]:
        started = time.perf_counter()
        if service_id not in SERVICES:
            raise UnknownService(service_id)
        if request.hook != SERVICES[service_id]:
            raise WrongHook(
                f"service {service_id!r} answers the {SERVICES[service_id]!r} hook, "
                f"not {request.hook!r}"
            )
        data = gather(request, self.content, self.limits, allow_server)
        encounter_id = request.context.encounterId if request.hook == "encounter-start" else None
        record = self.builder.build(request.context.patientId, data.resources, data.missing,
                                    as_of, encounter_id)
        gaps = [f"{kind}: {why}" for kind, why in data.missing.items()]
        gaps += data.notes
        if record.skipped:
            # in words on the cards (the references are in replay's skipped notes)
            shown = [_RESOURCE_REF.sub("", note, count=1) for note in record.skipped[:5]]
            more = len(record.skipped) - len(shown)
            gaps.append("skipped " + "; ".join(shown) + (f"; and {more} more" if more else ""))
        ctx = CardContext(str(request.hookInstance), request.context.patientId,
                          request.context.userId, gaps, self.always_answer)
        cards = render_cards(assess(self.content, record, self.always_answer), self.content,
                             ctx)
        response = HookResponse(cards=cards)
        counts: dict[str, int] = {}
        for card in cards:
            counts[card.indicator] = counts.get(card.indicator, 0) + 1
        used = sum(len(v) for table in (record.findings, record.measurements,
                                         record.procedures, record.medications)
                   for v in table.values())
        received = sum(n for kind, n in record.counts.items()
                       if " " not in kind)  # resource types, not notes such as "outside..."
        stats = CallStats(len(cards), counts, data.fetched, sorted(data.missing),
                          len(record.skipped), (time.perf_counter() - started) * 1000,
                          received, used, tuple(record.skipped))
        return response, stats
