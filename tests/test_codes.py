"""Every code in cards/ exists, with the display we wrote, in the source it says it was
checked against (SNOMED CT GPS, ICD-10-CM 2026); LOINC codes have valid check digits.

Reads the TOML directly, independent of the engine. A wrong code is worse than none."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
import simple_icd_10_cm as icd

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "cards"
GPS = Path(os.environ.get(
    "CDS_SNOMED_GPS", ROOT / ".cache/terminology/package/ValueSet-snomed-intl-gps.json"))
UCUM_CHECKED = {  # units used by the rules, each a valid UCUM expression
    "ug/L", "ug/mL", "mg/L", "ng/mL", "mg/dL", "mmol/L", "U/L", "Cel", "[degF]", "/min",
    "{beats}/min", "%", "{score}", "1",
    "ug/mL{FEU}", "ng/mL{FEU}", "mg/L{FEU}", "ug/L{FEU}",
    "ug/mL{DDU}", "ng/mL{DDU}", "mg/L{DDU}", "ug/L{DDU}", "meq/L", "mm/h",
}


def _load(name: str) -> dict:
    with (CARDS / name).open("rb") as handle:
        return tomllib.load(handle)


def _codings() -> list[tuple[str, dict]]:
    out = []
    for cid, concept in _load("concepts.toml")["concepts"].items():
        out += [(f"concept {cid}", c) for c in concept["codings"]]
    for oid, order in _load("orders.toml")["orders"].items():
        out += [(f"order {oid}", c) for c in order["codings"]]
    return out


CODINGS = _codings()


def _ids(system: str) -> list[tuple[str, dict]]:
    return [(where, c) for where, c in CODINGS if c["system"] == system]


def test_every_coding_names_a_known_source():
    sources = _load("sources.toml")["sources"]
    for where, c in CODINGS:
        assert {"system", "code", "display", "checked"} <= set(c), where
        assert c["checked"] in sources, f"{where}: unknown source {c['checked']}"


@pytest.mark.parametrize(("where", "coding"), _ids("icd10cm"), ids=lambda v: str(v)[:40])
def test_icd10cm_codes_exist_with_their_description(where, coding):
    code = coding["code"]
    assert icd.is_valid_item(code), f"{where}: {code} is not in ICD-10-CM 2026"
    assert icd.get_description(code).lower() == coding["display"].lower(), where
    if coding.get("match") == "range":
        assert "-" in code, f"{where}: a range is an ICD-10-CM block such as C00-C96"


def _gps() -> dict[str, str]:
    if not GPS.exists():
        pytest.skip(f"SNOMED CT GPS not found at {GPS} (scripts/fetch-terminology.sh needs npm)")
    concepts = json.loads(GPS.read_text())["compose"]["include"][0]["concept"]
    return {c["code"]: c["display"] for c in concepts}


# SNOMED CT US-extension codes as Synthea's covid19/diagnose_blood_clot.json module emits
# them (read in synthetichealth/synthea); they are not in the International GPS.
SYNTHEA_READ = {
    "132281000119108": "Acute deep venous thrombosis (disorder)",
    "706870000": "Acute pulmonary embolism (disorder)",
}


@pytest.mark.parametrize(("where", "coding"), _ids("snomed"), ids=lambda v: str(v)[:40])
def test_snomed_codes_exist_with_their_fsn(where, coding):
    if coding["checked"] == "synthea-modules":
        assert SYNTHEA_READ.get(coding["code"]) == coding["display"], where
        return
    assert coding["checked"] == "snomed-gps", where
    gps = _gps()
    assert coding["code"] in gps, f"{where}: {coding['code']} not in the GPS"
    assert gps[coding["code"]] == coding["display"], where


def _loinc_check_digit(body: str) -> int:
    """LOINC mod-10 check digit (Luhn over the digits before the hyphen)."""
    digits = [int(d) for d in body]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10


# LOINC codes with the long name where each was read (no LOINC table is reachable here).
LOINC_READ = {
    # synthea covid19/measurements_frequent.json and measurements_daily.json
    "48065-7": "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma",
    "1988-5": "C reactive protein [Mass/volume] in Serum or Plasma",
    "2157-6": "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma",
    "17861-6": "Calcium [Mass/volume] in Serum or Plasma",
    "2951-2": "Sodium [Moles/volume] in Serum or Plasma",
    "2823-3": "Potassium [Moles/volume] in Serum or Plasma",
    "58410-2": "Complete blood count (hemogram) panel - Blood by Automated count",
    "24323-8": "Comprehensive metabolic 2000 panel - Serum or Plasma",
    # hl7.fhir.r4.examples 4.0.1: Observation-body-temperature, -heart-rate, -satO2, -f202
    "8310-5": "Body temperature",
    "8867-4": "Heart rate",
    "2708-6": "Oxygen saturation in Arterial blood",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "8331-1": "Oral temperature",
    # Synthea output in smart-on-fhir/generated-sample-data (short displays for the blood
    # specimen codes there; long names as published by LOINC, confirm on loinc.org)
    "72514-3": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    "6298-4": "Potassium [Moles/volume] in Blood",
    "2947-0": "Sodium [Moles/volume] in Blood",
    "49765-1": "Calcium [Mass/volume] in Blood",
    # two or more independent public FHIR implementation guides
    "48066-5": "Fibrin D-dimer DDU [Mass/volume] in Platelet poor plasma",
    "19123-9": "Magnesium [Mass/volume] in Serum or Plasma",
    # npm hl7.fhir.uv.ips 2.0.0: StructureDefinition-Observation-pregnancy-status-uv-ips.json
    # fixes Observation.code to 82810-3; its example Observation-pregnancy-status-example
    # displays it "Pregnancy status"
    "82810-3": "Pregnancy status",
    # two independent LOINC table extracts (long name, short name "ESR Bld Qn Westrgrn",
    # class HEM/BC); confirm on loinc.org before production
    "4537-7": "Erythrocyte sedimentation rate by Westergren method",
}


@pytest.mark.parametrize(("where", "coding"), _ids("loinc"), ids=lambda v: str(v)[:40])
def test_loinc_codes_were_read_and_have_valid_check_digits(where, coding):
    body, _, check = coding["code"].partition("-")
    assert body.isdigit() and check.isdigit(), where
    assert _loinc_check_digit(body) == int(check), f"{where}: {coding['code']}"
    assert LOINC_READ.get(coding["code"]) == coding["display"], where


def test_only_icd10cm_uses_prefix_or_range_matching():
    for where, c in CODINGS:
        if c.get("match", "exact") != "exact":
            assert c["system"] == "icd10cm", where


def test_units_are_checked_ucum():
    for cid, concept in _load("concepts.toml")["concepts"].items():
        for unit in [concept.get("unit"), *concept.get("units", [])]:
            if unit is not None:
                assert unit in UCUM_CHECKED, f"concept {cid}: unit {unit!r}"


def test_coded_answers_of_yes_no_observations_are_in_the_gps():
    """present_values / absent_values (e.g. pregnancy status answers) are SNOMED CT codes."""
    gps = None
    for cid, concept in _load("concepts.toml")["concepts"].items():
        for code in [*concept.get("present_values", []), *concept.get("absent_values", [])]:
            gps = gps or _gps()
            assert code in gps, f"concept {cid}: answer {code} not in the GPS"
