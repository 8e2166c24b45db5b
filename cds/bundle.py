"""FHIR Bundles as an EHR would present them: prefetch built from a bundle, and the FHIR
search subset our templates use, evaluated over a bundle's resources.

Used by `cds replay` (to build the hook request an EHR would send) and by the local FHIR
server that replay and the tests start for the fetch path.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cds.content import Content
from cds.prefetch import prefetch_keys
from cds.terminology import codings_of

REPLAY_USER = "Practitioner/replay"


class BundleError(ValueError):
    """The input is not a usable FHIR Bundle or hook request."""


def resources_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BundleError("not a FHIR Bundle (resourceType must be 'Bundle')")
    entries = bundle.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise BundleError("Bundle.entry must be a list")
    out = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            out.append(entry["resource"])
    return out


def last_encounter_start(bundle: dict[str, Any]) -> datetime | None:
    """When the chart's latest Encounter began: 'open the chart at its last visit', to replay
    a historical chart (Synthea) as the clinician then saw it."""
    starts = []
    for resource in resources_of(bundle):
        period = resource.get("period") if resource.get("resourceType") == "Encounter" else None
        start = period.get("start") if isinstance(period, dict) else None
        if isinstance(start, str):
            try:
                moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                continue
            starts.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return max(starts, default=None)


def patient_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if not patients:
        raise BundleError("the bundle has no Patient resource")
    if not isinstance(patients[0].get("id"), str):
        raise BundleError("the bundle's Patient has no id")
    return patients[0]


def _codes(resource: dict[str, Any], element: str) -> set[str]:
    value = resource.get(element)
    items = value if isinstance(value, list) else [value]
    found = set()
    for item in items:
        if isinstance(item, dict):
            for coding in codings_of(item):
                if isinstance(coding, dict):
                    found.add(f"{coding.get('system')}|{coding.get('code')}")
                    found.add(str(coding.get("code")))
    return found


def _references_patient(resource: dict[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject") or resource.get("patient")
    if not isinstance(subject, dict):
        return True
    ref = str(subject.get("reference", ""))
    return ref.endswith(patient_id) or ref == f"urn:uuid:{patient_id}"


def search(resources: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Evaluate `Type/id` or `Type?param=...` over resources (patient, code, category,
    status; comma means OR, as in FHIR)."""
    parts = urlsplit(query)
    path = parts.path.strip("/")
    if "/" in path:
        rtype, _, rid = path.partition("/")
        return [r for r in resources if r.get("resourceType") == rtype and r.get("id") == rid]
    params = parse_qs(parts.query)
    found = [r for r in resources if r.get("resourceType") == path]
    for name, values in params.items():
        wanted = {v for value in values for v in value.split(",")}
        if name in ("patient", "subject"):
            found = [r for r in found if any(_references_patient(r, w.split("/")[-1])
                                             for w in wanted)]
        elif name in ("code", "category"):
            found = [r for r in found if _codes(r, name) & wanted]
        elif name == "status":
            found = [r for r in found if r.get("status") in wanted]
        elif name == "questionnaire":
            found = [r for r in found if str(r.get("questionnaire", "")).split("|")[0] in wanted]
    return found


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def hook_request_from_bundle(bundle: dict[str, Any], content: Content,
                             fhir_server: str | None = None,
                             hook: str = "patient-view") -> dict[str, Any]:
    """The request an EHR would send for this patient: prefetch filled from the bundle, or
    (with `fhir_server`) no prefetch, so the service fetches."""
    resources = resources_of(bundle)
    patient = patient_of(resources)
    patient_id = patient["id"]
    request: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": REPLAY_USER, "patientId": patient_id},
    }
    if hook == "encounter-start":
        encounters = [r for r in resources if r.get("resourceType") == "Encounter"]
        request["context"]["encounterId"] = encounters[-1]["id"] if encounters else "replay"
    if fhir_server:
        request["fhirServer"] = fhir_server
        return request
    prefetch: dict[str, Any] = {}
    for spec in prefetch_keys(content):
        query = spec.template.replace("{{context.patientId}}", patient_id)
        hits = search(resources, query)
        prefetch[spec.key] = (hits[0] if hits else None) if spec.kind == "Patient" else (
            searchset(hits))
    request["prefetch"] = prefetch
    return request
