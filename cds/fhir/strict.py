"""Whole-resource validation with fhir.resources (R4B models read R4 JSON).

The request path reads only the elements the rules use (cds.record with cds.fhir.elements);
this checks everything else too, for `cds replay --strict`: unknown elements, wrong types in
elements no rule reads, missing required elements, broken invariants such as two value[x].
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds.prefetch import bundle_resources


def problem(resource: Any) -> str | None:
    """What is wrong with one resource, in a line, or None when it is valid FHIR."""
    if not isinstance(resource, dict):
        return "not a JSON object"
    rtype = resource.get("resourceType")
    try:
        model = get_fhir_model_class(rtype) if isinstance(rtype, str) else None
    except (KeyError, ValueError, AttributeError):
        model = None
    if model is None:
        return f"unknown resourceType {rtype!r}"
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{where or 'resource'}: {errors[0]['msg'] if errors else exc}{more}"
    except RecursionError:
        return "nested too deeply to validate"
    except (ValueError, TypeError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def resources_in(document: dict[str, Any]) -> list[Any]:
    """The resources of a Bundle, or of every prefetch value of a CDS Hooks request."""
    if document.get("resourceType") == "Bundle":
        return bundle_resources(document)
    out: list[Any] = []
    prefetch = document.get("prefetch")
    for value in (prefetch.values() if isinstance(prefetch, dict) else ()):
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            out += bundle_resources(value)
        elif value is not None:
            out.append(value)
    return out


def invalid_resources(document: dict[str, Any]) -> list[str]:
    """'Observation/abc: valueQuantity.value: ...' for every invalid resource."""
    found = []
    for resource in resources_in(document):
        reason = problem(resource)
        if reason is not None:
            rtype = resource.get("resourceType") if isinstance(resource, dict) else None
            ident = resource.get("id") if isinstance(resource, dict) else None
            found.append(f"{rtype or '?'}/{ident if isinstance(ident, str) else '?'}: {reason}")
    return found
