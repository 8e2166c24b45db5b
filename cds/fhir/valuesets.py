"""Expanded value sets (cards/valuesets/*.json): loaded once, used as plain sets of codes.

Each file is a FHIR ValueSet whose `expansion` was computed at build time from the rules in
cards/valuesets.toml (scripts/build-valuesets.py); the request path only does set lookups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"


@dataclass(frozen=True)
class ExpandedValueSet:
    """The codes of one value set, by system, as written in its expansion."""

    id: str
    title: str
    codes: frozenset[tuple[str, str]]  # (system, code)
    displays: dict[tuple[str, str], str]  # as the code system names them (FSN, ICD title)

    def __contains__(self, item: object) -> bool:
        return item in self.codes


def load_valuesets(folder: Path) -> dict[str, ExpandedValueSet]:
    """Every expansion in `folder`, by id (an absent folder means none)."""
    out: dict[str, ExpandedValueSet] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        contains = data.get("expansion", {}).get("contains", [])
        displays = {(c["system"], c["code"]): c.get("display", "") for c in contains}
        out[data["id"]] = ExpandedValueSet(data["id"], data.get("title", data["id"]),
                                           frozenset(displays), displays)
    return out
