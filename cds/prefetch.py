"""Prefetch: use what the EHR sent, fetch what is missing from its FHIR server.

Templates ask for exactly what the rules need (the Observation query is narrowed to the LOINC
codes in cards/). A key that is missing or null is fetched from `fhirServer` with the bearer
token from `fhirAuthorization`, following Bundle `next` links only inside the fhirServer's base
URL, within one set of bounds for the whole call (pages, bytes, resources, and a deadline that
holds whatever the server does: see cds.fhir.transport). Required data (patient, conditions,
observations) that can be neither prefetched nor fetched gets 412, naming what failed and why;
optional data that cannot be read is a data gap the cards name.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any
from urllib.parse import urljoin

import requests

from cds.content import Content, per_content
from cds.fhir.scope import within
from cds.fhir.transport import DeadlinePassed, FetchGuard, guarded_session
from cds.hooks import HookRequest
from cds.smart.apps import smart_apps

log = logging.getLogger(__name__)

TOKEN = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


@dataclass(frozen=True)
class PrefetchKey:
    """One prefetch template and the data kind it feeds."""

    key: str
    kind: str  # FHIR resource type
    template: str
    required: bool
    quiet: bool = False  # optional data whose absence is not worth a line on the cards


def prefetch_keys(content: Content, hook: str = "patient-view") -> list[PrefetchKey]:
    """The templates a service asks for; encounter-start also reads its Encounter, whose
    reason counts as the presentation."""
    loinc = content.systems["loinc"]
    codes = sorted(
        {
            c.code
            for concept in content.concepts.values()
            if concept.kind == "observation"
            for c in concept.codings
            if c.system == "loinc"
        }
    )
    observation_codes = ",".join(f"{loinc}|{code}" for code in codes)
    encounter = [PrefetchKey("encounter", "Encounter", "Encounter/{{context.encounterId}}",
                             False)] if hook == "encounter-start" else []
    return [
        *encounter,
        PrefetchKey("patient", "Patient", "Patient/{{context.patientId}}", True),
        PrefetchKey("conditions", "Condition", "Condition?patient={{context.patientId}}", True),
        PrefetchKey(
            "observations",
            "Observation",
            f"Observation?patient={{{{context.patientId}}}}&code={observation_codes}",
            True,
        ),
        # Symptoms and signs recorded as exam Observations carry SNOMED codes, too many to
        # list in a URL: ask for the exam category instead.
        PrefetchKey(
            "findings",
            "Observation",
            "Observation?patient={{context.patientId}}&category="
            "http://terminology.hl7.org/CodeSystem/observation-category|exam",
            False,
        ),
        PrefetchKey("procedures", "Procedure", "Procedure?patient={{context.patientId}}", False),
        PrefetchKey(
            "medications",
            "MedicationRequest",
            "MedicationRequest?patient={{context.patientId}}&status=active",
            False,
        ),
        *answer_keys(content),
    ]


@per_content
def _keys_of(content: Content, hook: str) -> tuple[PrefetchKey, ...]:
    """prefetch_keys, worked out once per copy of cards/ and hook (not on every call)."""
    return tuple(prefetch_keys(content, hook))


def answer_keys(content: Content) -> list[PrefetchKey]:
    """The clinician's answers to our apps' Questionnaires (QuestionnaireResponses)."""
    return [
        PrefetchKey(f"{app.id}-answers", "QuestionnaireResponse",
                    "QuestionnaireResponse?patient={{context.patientId}}"
                    f"&questionnaire={app.questionnaire}", False, quiet=True)
        for app in smart_apps(content)
    ]


class TemplateError(ValueError):
    """A prefetch template uses a token the request cannot fill."""


def fill_template(template: str, request: HookRequest) -> str:
    context = request.context.model_dump(exclude_none=True)
    user_type, _, user_id = request.context.userId.partition("/")

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            name = token.removeprefix("context.")
            value = context.get(name)
            if value is None or isinstance(value, dict | list):
                raise TemplateError(f"context has no primitive field {name!r}")
            return str(value)
        if token in USER_TOKENS:
            if user_type != USER_TOKENS[token]:
                raise TemplateError(f"{token} needs a {USER_TOKENS[token]} user")
            return user_id
        raise TemplateError(f"unknown prefetch token {{{{{token}}}}}")

    return TOKEN.sub(replace, template)


@dataclass
class FetchLimits:
    """Bounds on everything one hook call reads from the FHIR server, all queries together.

    Memory is bounded by them too: at most `max_bytes` of response text is held, and the
    parsed resources are at most `max_resources`."""

    connect_timeout: float = 3.05
    read_timeout: float = 10.0  # one socket read
    total_seconds: float = 20.0  # every fetch of the call, whatever the server does
    max_pages: int = 100
    max_bytes: int = 32 * 1024 * 1024
    max_resources: int = 50_000


@dataclass
class PatientData:
    """What one hook call could read, by FHIR resource type, and what it could not."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)  # keys read from the FHIR server


class PreconditionFailed(Exception):
    """Required data is neither prefetched nor obtainable (CDS Hooks: 412)."""


class InvalidPrefetch(PreconditionFailed):
    """Required prefetch was sent but is not usable FHIR, and there is no server to fetch it
    from instead: the request itself is wrong (400, naming what)."""


class FetchFailed(ValueError):
    """A query could not be read completely; the message says why (for cards and logs)."""


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries; entries without a resource object are left out,
    and an `entry` that is not a list is an error, never a crash."""
    entries = bundle.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise FetchFailed("Bundle.entry is not a list")
    if not entries:  # a search that found nothing (most of a chart's searches): no passes
        return []
    # a chart sends thousands of entries, nearly always all well formed: take every
    # resource at C speed, and filter one by one only when some entry is not
    try:
        resources = list(map(_RESOURCE, entries))
    except (KeyError, TypeError):  # an entry without a resource, or not an object
        pass
    else:
        if _ALL_DICTS.issuperset(map(type, resources)):
            return resources
    return [e["resource"] for e in entries
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


_ALL_DICTS = frozenset({dict})
_RESOURCE = itemgetter("resource")


def _next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _entries(value: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    rtype = value.get("resourceType")
    if rtype == "Bundle":
        return bundle_resources(value)
    if rtype == "OperationOutcome":
        raise ValueError("the EHR sent an OperationOutcome instead of data")
    if rtype == kind and kind in {"Patient", "Encounter"}:
        return [value]
    raise ValueError(f"expected a Bundle of {kind}, got {rtype or 'no resourceType'}")


class FhirFetcher:
    """Reads FHIR searches from one server with one token, within one call's limits (pages,
    bytes, resources and time, all queries together); never logs the token."""

    def __init__(self, base: str, token: str | None, limits: FetchLimits,
                 guard: FetchGuard) -> None:
        self.base = base.rstrip("/") + "/"
        self.limits = limits
        self.guard = guard
        self.session = guarded_session(guard)
        self.headers = {"Accept": "application/fhir+json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.pages = self.bytes = self.resources = 0

    def _get(self, url: str) -> dict[str, Any]:
        if not within(url, self.base):
            raise FetchFailed("a page link points outside the fhirServer; not followed")
        if self.pages >= self.limits.max_pages:
            raise FetchFailed(f"more than {self.limits.max_pages} pages in one call; "
                              "stopped reading")
        self.pages += 1
        left = self.guard.remaining()
        timeout = (min(self.limits.connect_timeout, left), min(self.limits.read_timeout, left))
        room = self.limits.max_bytes - self.bytes
        with self.session.get(url, headers=self.headers, timeout=timeout, stream=True,
                              allow_redirects=False) as response:
            if response.status_code != 200:
                raise FetchFailed(f"FHIR server answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > room:
                raise FetchFailed(f"more than {self.limits.max_bytes} bytes in one call")
            body = bytearray()
            for chunk in response.iter_content(65536):
                body.extend(chunk)
                if len(body) > room:
                    raise FetchFailed(f"more than {self.limits.max_bytes} bytes in one call")
                self.guard.remaining()
        self.bytes += len(body)
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise FetchFailed("FHIR server sent a body that is not JSON") from exc
        if not isinstance(value, dict):
            raise FetchFailed("FHIR server sent JSON that is not a resource")
        return value

    def _count(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.resources += len(found)
        if self.resources > self.limits.max_resources:
            raise FetchFailed(f"more than {self.limits.max_resources} resources in one call; "
                              "stopped reading")
        return found

    def read(self, query: str, kind: str) -> list[dict[str, Any]]:
        url = urljoin(self.base, query)
        bundle = self._get(url)
        if bundle.get("resourceType") != "Bundle":
            if bundle.get("resourceType") == "OperationOutcome":
                raise FetchFailed("FHIR server returned an OperationOutcome")
            return self._count([bundle] if bundle.get("resourceType") == kind else [])
        resources = self._count(bundle_resources(bundle))
        while (next_url := _next_link(bundle)) is not None:
            bundle = self._get(urljoin(url, next_url))
            resources += self._count(bundle_resources(bundle))
        return resources


def gather(request: HookRequest, content: Content, limits: FetchLimits | None = None,
           allow_server: Callable[[str], bool] | None = None) -> PatientData:
    """Collect the patient's data from prefetch and, for missing keys, from the FHIR server.

    `allow_server` says whether this caller may make us read from its fhirServer; a server it
    may not use is treated as no server at all. Required data that can be neither prefetched
    nor fetched raises PreconditionFailed (412); optional data that cannot be read becomes a
    data gap the cards name."""
    limits = limits or FetchLimits()
    data = PatientData()
    prefetch = request.prefetch or {}
    to_fetch: list[PrefetchKey] = []
    unusable: dict[str, str] = {}
    for spec in _keys_of(content, request.hook):
        value = prefetch.get(spec.key)
        if value is not None:
            try:
                found = _entries(value, spec.kind)  # a new list: kept as it is when first
                known = data.resources.get(spec.kind)
                if known is None:
                    data.resources[spec.kind] = found
                else:
                    known.extend(found)
            except ValueError as exc:
                data.notes.append(f"prefetch {spec.key!r}: {exc}")
                unusable[spec.key] = str(exc)
                to_fetch.append(spec)
        elif spec.key in prefetch and spec.kind in {"Patient", "Encounter"}:
            data.resources.setdefault(spec.kind, [])  # null: the read found nothing
        else:
            to_fetch.append(spec)
    if not to_fetch:
        return data
    server_ok = request.fhirServer is not None and (
        allow_server is None or allow_server(str(request.fhirServer)))
    if not server_ok:
        why = ("no fhirServer to fetch it from" if request.fhirServer is None
               else "the fhirServer is not one this client may use")
        required = [s.key for s in to_fetch if s.required]
        if any(key in unusable for key in required):
            raise InvalidPrefetch("; ".join(f"prefetch {key!r}: {unusable[key]}"
                                            for key in required if key in unusable))
        if required:
            raise PreconditionFailed(f"prefetch {', '.join(required)} missing and {why}")
        for spec in to_fetch:
            if spec.quiet:
                continue
            if spec.kind in data.resources:
                data.notes.append(f"prefetch {spec.key!r} not sent and no usable FHIR server")
            else:
                data.missing[spec.kind] = "not prefetched and no usable FHIR server"
        return data
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    with FetchGuard(limits.total_seconds) as guard:
        fetcher = FhirFetcher(str(request.fhirServer), token, limits, guard)
        _fetch_all(fetcher, request, sorted(to_fetch, key=lambda s: not s.required), data)
    return data


def _fetch_all(fetcher: FhirFetcher, request: HookRequest, specs: list[PrefetchKey],
               data: PatientData) -> None:
    """Fetch required keys first; if any fails, stop and answer 412 naming each one."""
    failed: list[str] = []
    for spec in specs:
        if failed and not spec.required:
            break
        try:
            query = fill_template(spec.template, request)
            data.resources.setdefault(spec.kind, []).extend(fetcher.read(query, spec.kind))
            data.fetched.append(spec.key)
        except (requests.RequestException, OSError, ValueError, TemplateError) as exc:
            reason = _describe(exc, fetcher.guard)
            log.warning("fetch of %s failed: %s", spec.key, reason)
            if spec.required:
                failed.append(f"{spec.key} ({reason})")
            elif not spec.quiet:
                data.missing[spec.kind] = reason
    if failed:
        raise PreconditionFailed("required data could not be fetched from the fhirServer: "
                                 + "; ".join(failed))


def _describe(exc: Exception, guard: FetchGuard) -> str:
    if guard.refused:
        return guard.refused
    if guard.expired or isinstance(exc, DeadlinePassed):
        return f"the FHIR server did not answer within the time budget ({guard.seconds:g} s)"
    if isinstance(exc, requests.Timeout | TimeoutError):
        return "the FHIR server did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "the FHIR server could not be reached"
    return str(exc) or exc.__class__.__name__
