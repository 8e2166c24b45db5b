"""Expand the value-set rules in cards/valuesets.toml against their code systems.

Build time only (scripts/build-valuesets.py and tests/test_valuesets.py): ICD-10-CM by
hierarchy with simple-icd-10-cm (a code, category or block and all its descendants; or a
range of categories such as C00-C96), SNOMED CT from the Global Patient Set (the FSNs in
hl7.terminology.r4's ValueSet-snomed-intl-gps.json) by semantic tag and reviewed regular
expressions over the FSN, plus codes listed one by one. The service never imports this.
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from cds.fhir.valuesets import ICD10CM, SNOMED

GPS_FILE = "ValueSet-snomed-intl-gps.json"
ICD_PACKAGE = "simple-icd-10-cm"


class ExpansionError(ValueError):
    """A rule names a code its code system does not have."""


def read_rules(path: Path) -> dict[str, dict[str, Any]]:
    with path.open("rb") as handle:
        rules: dict[str, dict[str, Any]] = tomllib.load(handle)["valuesets"]
    return rules


def needs_snomed(rule: dict[str, Any]) -> bool:
    return any(k.startswith("snomed_") for k in rule)


# ---------------------------------------------------------------- ICD-10-CM


@cache
def _icd() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as icd
    return icd


@cache
def _icd_categories() -> list[str]:
    icd = _icd()
    return [c for c in icd.get_all_codes(True) if icd.is_category(c)]


def _icd_items(item: str) -> set[str]:
    """`item` and all its descendants (codes only, never chapters or blocks)."""
    icd = _icd()
    if icd.is_valid_item(item) and (icd.is_category_or_subcategory(item)
                                    or icd.get_descendants(item)):
        roots = [item]
    else:
        first, sep, last = item.partition("-")
        roots = [c for c in _icd_categories() if sep and first <= c <= last]
        if not roots:
            raise ExpansionError(f"ICD-10-CM has no code, block or category range {item!r}")
    out: set[str] = set()
    for root in roots:
        for code in [root, *icd.get_descendants(root)]:
            if icd.is_category_or_subcategory(code):
                out.add(code)
    return out


def expand_icd(rule: dict[str, Any]) -> list[dict[str, str]]:
    icd = _icd()
    codes: set[str] = set()
    for item in rule.get("icd10cm_include", []):
        codes |= _icd_items(item)
    for item in rule.get("icd10cm_exclude", []):
        codes -= _icd_items(item)
    return [{"system": ICD10CM, "code": c, "display": icd.get_description(c)}
            for c in sorted(codes)]


def icd_version() -> str:
    from importlib.metadata import version

    return f"CMS ICD-10-CM April 1 2026 tabular, via {ICD_PACKAGE} {version(ICD_PACKAGE)}"


# ---------------------------------------------------------------- SNOMED CT (GPS)


@cache
def read_gps(path: Path) -> tuple[str, dict[str, str]]:
    """(version, {code: FSN}) of the SNOMED CT Global Patient Set file."""
    data = json.loads(path.read_text())
    include = data["compose"]["include"][0]
    return include.get("version", ""), {c["code"]: c["display"] for c in include["concept"]}


def _tag(fsn: str) -> str:
    found = re.search(r"\(([^()]*)\)$", fsn)
    return found.group(1) if found else ""


def expand_snomed(rule: dict[str, Any], gps: dict[str, str]) -> list[dict[str, str]]:
    tags = set(rule.get("snomed_tags", []))
    wanted = [re.compile(p, re.IGNORECASE) for p in rule.get("snomed_fsn", [])]
    unwanted = [re.compile(p, re.IGNORECASE) for p in rule.get("snomed_exclude_fsn", [])]
    codes = set()
    if wanted:
        for code, fsn in gps.items():
            if ((not tags or _tag(fsn) in tags) and any(p.search(fsn) for p in wanted)
                    and not any(p.search(fsn) for p in unwanted)):
                codes.add(code)
    for code in rule.get("snomed_codes", []):
        if code not in gps:
            raise ExpansionError(f"SNOMED CT {code} is not in the Global Patient Set")
        codes.add(code)
    for code in rule.get("snomed_exclude", []):
        if code not in gps:
            raise ExpansionError(f"SNOMED CT {code} (excluded) is not in the Global Patient Set")
        codes.discard(code)
    return [{"system": SNOMED, "code": c, "display": gps[c]}
            for c in sorted(codes, key=int)]


# ---------------------------------------------------------------- the ValueSet resource


def _compose(rule: dict[str, Any], gps_version: str | None) -> dict[str, Any]:
    """The rule, written as a FHIR ValueSet.compose (filters say how codes were chosen)."""
    include: list[dict[str, Any]] = []
    exclude: list[dict[str, Any]] = []
    for item in rule.get("icd10cm_include", []):
        include.append({"system": ICD10CM, "filter": [
            {"property": "concept", "op": "is-a", "value": item}]})
    for item in rule.get("icd10cm_exclude", []):
        exclude.append({"system": ICD10CM, "filter": [
            {"property": "concept", "op": "is-a", "value": item}]})
    if rule.get("snomed_fsn"):
        filters = [{"property": "display", "op": "regex",
                    "value": "(?i)" + "|".join(rule["snomed_fsn"])}]
        if rule.get("snomed_tags"):
            filters.append({"property": "semantic-tag", "op": "in",
                            "value": ",".join(rule["snomed_tags"])})
        include.append({"system": SNOMED, "version": gps_version, "filter": filters})
    if rule.get("snomed_codes"):
        include.append({"system": SNOMED, "version": gps_version,
                        "concept": [{"code": c} for c in rule["snomed_codes"]]})
    if rule.get("snomed_exclude_fsn"):
        exclude.append({"system": SNOMED, "version": gps_version, "filter": [
            {"property": "display", "op": "regex",
             "value": "(?i)" + "|".join(rule["snomed_exclude_fsn"])}]})
    if rule.get("snomed_exclude"):
        exclude.append({"system": SNOMED, "version": gps_version,
                        "concept": [{"code": c} for c in rule["snomed_exclude"]]})
    compose: dict[str, Any] = {"include": include}
    if exclude:
        compose["exclude"] = exclude
    return compose


def expand(vs_id: str, rule: dict[str, Any], gps_path: Path | None) -> dict[str, Any]:
    """The FHIR ValueSet for one rule, with its expansion and where each part came from."""
    contains = expand_icd(rule) if any(k.startswith("icd10cm_") for k in rule) else []
    parameters = []
    gps_version = None
    if contains:
        parameters.append({"name": "used-codesystem", "valueUri": ICD10CM,
                           "valueString": icd_version()})
    if needs_snomed(rule):
        if gps_path is None or not gps_path.exists():
            raise ExpansionError(f"{vs_id}: needs the SNOMED CT GPS ({GPS_FILE}); run "
                                 "scripts/fetch-terminology.sh")
        gps_version, gps = read_gps(gps_path)
        contains += expand_snomed(rule, gps)
        parameters.append({"name": "used-codesystem", "valueUri": SNOMED,
                           "valueString": f"{gps_version}, Global Patient Set as in "
                                          "hl7.terminology.r4 7.0.1"})
    if not contains:
        raise ExpansionError(f"{vs_id}: the rule selects no code")
    return {
        "resourceType": "ValueSet",
        "id": vs_id,
        "url": f"urn:thigh-pain-cds:valueset:{vs_id}",
        "status": "active",
        "title": rule["title"],
        "description": rule["description"],
        "compose": _compose(rule, gps_version),
        "expansion": {
            "identifier": f"urn:thigh-pain-cds:valueset:{vs_id}:expansion",
            "parameter": parameters,
            "total": len(contains),
            "contains": contains,
        },
    }


def render(valueset: dict[str, Any]) -> str:
    """The exact text written to cards/valuesets/<id>.json: one code a line, so a diff of
    a regenerated expansion reads as the codes that came and went."""
    contains = valueset["expansion"]["contains"]
    head = {**valueset, "expansion": {**valueset["expansion"], "contains": ["@CONTAINS@"]}}
    text = json.dumps(head, indent=1, ensure_ascii=False)
    lines = ",\n   ".join(json.dumps(c, ensure_ascii=False) for c in contains)
    return text.replace('"@CONTAINS@"', lines) + "\n"
