"""Codes to concepts: the lookup table built from cards/concepts.toml and the expanded value
sets in cards/valuesets/ (built once at start-up; a lookup is a dict access).

Matching is on system + code only (displays vary and sometimes carry zero-width spaces).
ICD-10-CM codes are compared without their dot, so `M5416` and `M54.16` are the same code.
A body site can add a concept: numbness with a perineal bodySite is saddle anaesthesia,
sciatica with a left laterality qualifier is left-sided sciatica.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from cds.content import Content

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def normalise_code(system: str, code: str) -> str:
    code = code.strip()
    if system == ICD10CM:
        return code.replace(".", "").upper()
    return code


def codings_of(codeable: Any) -> list[Any]:
    """The `coding` list of a raw CodeableConcept; empty when absent or not a list (a chart
    may send anything: validation reports it, the lookup must not fail on it)."""
    codings = codeable.get("coding") if isinstance(codeable, dict) else None
    return codings if isinstance(codings, list) else []


@dataclass
class Terminology:
    """Maps (system, code) to the concept ids that code means."""

    exact: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    prefixes: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    # ICD-10-CM blocks such as C00-C96: (first category, last category, concept)
    ranges: dict[str, list[tuple[str, str, str]]] = field(
        default_factory=lambda: defaultdict(list))
    # finding concept -> [(concept it becomes, the (system, code) body sites that make it)]
    sited: dict[str, list[tuple[str, frozenset[tuple[str, str]]]]] = field(
        default_factory=lambda: defaultdict(list))
    # system -> code -> concepts, so a chart with thousands of results looks each code up
    # once (by two dict reads: no key tuple to build per coding)
    _memo: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict, repr=False)
    _memo_size: int = field(default=0, repr=False)
    _MEMO_LIMIT = 50_000

    @classmethod
    def from_content(cls, content: Content) -> Terminology:
        table = cls()
        for concept_id, concept in content.concepts.items():
            for coding in concept.codings:
                system = content.systems[coding.system]
                code = normalise_code(system, coding.code)
                if coding.match == "prefix":
                    table.prefixes[system].append((code, concept_id))
                elif coding.match == "range":
                    first, _, last = coding.code.upper().partition("-")
                    table.ranges[system].append((first, last or first, concept_id))
                else:
                    table.exact[(system, code)].add(concept_id)
            for vs_id in concept.valuesets:
                for system, code in content.valuesets[vs_id].codes:
                    table.exact[(system, normalise_code(system, code))].add(concept_id)
            for rule in concept.qualified:
                table.sited[rule.finding].append(
                    (concept_id, content.valuesets[rule.site].codes))
        return table

    def concepts_for(self, system: object, code: object) -> set[str]:
        return set(self._lookup(system, code))

    def _lookup(self, system: object, code: object) -> frozenset[str]:
        try:
            return self._memo[system][code]  # type: ignore[index]
        except (KeyError, TypeError):  # not looked up yet, or not strings (unhashable)
            return self._remember(system, code)

    def _remember(self, system: object, code: object) -> frozenset[str]:
        if not isinstance(system, str) or not isinstance(code, str) or not system or not code:
            return _NOTHING
        if self._memo_size >= self._MEMO_LIMIT:  # codes come from the caller: bound it
            self._memo.clear()
            self._memo_size = 0
        found = frozenset(self._match(system, code)) or _NOTHING
        self._memo.setdefault(system, {})[code] = found
        self._memo_size += 1
        return found

    def _match(self, system: str, code: str) -> set[str]:
        norm = normalise_code(system, code)
        found = set(self.exact.get((system, norm), ()))
        for prefix, concept_id in self.prefixes.get(system, ()):
            if norm.startswith(prefix):
                found.add(concept_id)
        category = norm[:3]
        for first, last, concept_id in self.ranges.get(system, ()):
            if first <= category <= last:
                found.add(concept_id)
        return found

    def concepts_in(self, codeable: dict | None) -> set[str]:
        """All concepts any coding of a FHIR CodeableConcept (raw JSON) maps to."""
        return set(self.concepts_of(codeable))

    def concepts_of(self, codeable: object) -> frozenset[str]:
        """concepts_in for the request path, which asks it of every resource: no new set
        per call (the answer may be shared: never change it)."""
        try:  # decoded JSON of the usual shape, one coding whose code was seen: dict reads
            codings = codeable["coding"]  # type: ignore[index]
            if len(codings) == 1:
                coding = codings[0]
                return self._memo[coding["system"]][coding["code"]]
        except (KeyError, TypeError):  # any other shape or value is looked at below
            pass
        if not isinstance(codeable, dict):
            return _NOTHING
        codings = codeable.get("coding")
        if not isinstance(codings, list):  # e.g. "coding": 1.5 names no concept
            return _NOTHING
        found = _NOTHING
        for coding in codings:
            if isinstance(coding, dict):
                found = found | self._lookup(coding.get("system"), coding.get("code"))
        return found

    def concepts_at_site(self, concepts: Set[str], body_sites: Any) -> set[str]:
        """Concepts a finding means because of where it is (`bodySite`: one CodeableConcept,
        as in Observation, or a list, as in Condition). Laterality may be a separate coding
        or a SNOMED CT expression such as `61685007:272741003=7771000`."""
        if not body_sites:
            return set()
        rules = [r for c in concepts for r in self.sited.get(c, ())]
        if not rules:
            return set()
        sites = body_sites if isinstance(body_sites, list) else [body_sites]
        codes: set[tuple[str, str]] = set()
        for site in sites:
            if not isinstance(site, dict):
                continue
            codings = site.get("coding")
            for coding in codings if isinstance(codings, list) else ():
                if not isinstance(coding, dict):
                    continue
                system, code = coding.get("system"), coding.get("code")
                if isinstance(system, str) and isinstance(code, str):
                    codes.add((system, code.strip()))
                    if ":" in code:  # a post-coordinated expression: focus and values
                        codes |= {(system, part) for part in _SCTID.findall(code)}
        return {concept for concept, wanted in rules if codes & wanted}


_SCTID = re.compile(r"\d{6,18}")
_NOTHING: frozenset[str] = frozenset()
