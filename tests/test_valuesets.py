"""The expanded value sets in cards/valuesets/ are exactly what their rules in
cards/valuesets.toml give against the named code systems (ICD-10-CM 2026 via
simple-icd-10-cm; SNOMED CT GPS via hl7.terminology.r4), and every code in them exists there
with the display written. A reviewer reads the rules; the test keeps the files honest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import simple_icd_10_cm as icd

from cds.fhir.expand import expand, needs_snomed, read_gps, read_rules, render
from cds.fhir.valuesets import ICD10CM, SNOMED

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "cards" / "valuesets"
RULES = read_rules(ROOT / "cards" / "valuesets.toml")
GPS = Path(os.environ.get(
    "CDS_SNOMED_GPS", ROOT / ".cache/terminology/package/ValueSet-snomed-intl-gps.json"))


def test_every_rule_has_its_file_and_every_file_a_rule():
    assert {p.stem for p in FOLDER.glob("*.json")} == set(RULES)


@pytest.mark.parametrize("vs_id", sorted(RULES))
def test_checked_in_expansion_is_what_the_rule_gives(vs_id):
    rule = RULES[vs_id]
    if needs_snomed(rule) and not GPS.exists():
        pytest.skip(f"SNOMED CT GPS not found at {GPS} (scripts/fetch-terminology.sh needs npm)")
    expected = render(expand(vs_id, rule, GPS))
    assert (FOLDER / f"{vs_id}.json").read_text() == expected, (
        f"{vs_id}: run python scripts/build-valuesets.py and review the diff")


def _contains(vs_id: str) -> list[dict]:
    return json.loads((FOLDER / f"{vs_id}.json").read_text())["expansion"]["contains"]


@pytest.mark.parametrize("vs_id", sorted(RULES))
def test_every_expanded_code_exists_in_its_source_with_its_display(vs_id):
    codes = _contains(vs_id)
    assert codes, vs_id
    gps: dict[str, str] | None = None
    for c in codes:
        if c["system"] == ICD10CM:
            assert icd.is_valid_item(c["code"]), (vs_id, c["code"])
            assert icd.get_description(c["code"]) == c["display"], (vs_id, c)
        else:
            assert c["system"] == SNOMED, (vs_id, c)
            if gps is None:
                if not GPS.exists():
                    pytest.skip("SNOMED CT GPS not found (scripts/fetch-terminology.sh)")
                gps = read_gps(GPS)[1]
            assert gps.get(c["code"]) == c["display"], (vs_id, c)


def test_value_sets_hold_the_codes_a_clinician_expects(content):
    """Spot checks that the rules mean what their titles say (ICD hierarchy, SNOMED FSNs)."""
    def has(vs_id: str, system: str, code: str) -> bool:
        return (system, code) in content.valuesets[vs_id].codes

    assert has("malignant-neoplasm", ICD10CM, "C50.911")  # breast, right, female
    assert has("malignant-neoplasm", ICD10CM, "C61")  # prostate
    assert not has("malignant-neoplasm", ICD10CM, "C44.91")  # basal cell skin: left out
    assert has("fracture-hip-femur-pelvis-spine", ICD10CM, "S72.001A")  # femoral neck
    assert has("fracture-hip-femur-pelvis-spine", ICD10CM, "S32.009A")  # lumbar vertebra
    assert not has("fracture-hip-femur-pelvis-spine", ICD10CM, "S82.001A")  # patella
    assert has("cancer-history", ICD10CM, "Z85.46")
    assert has("immunosuppression", ICD10CM, "D84.821")  # immunodeficiency due to drugs
    assert has("pregnancy", ICD10CM, "Z3A.20")  # 20 weeks gestation
    if not GPS.exists():
        return
    assert has("malignant-neoplasm", SNOMED, "254837009")  # Malignant neoplasm of breast
    assert has("malignant-neoplasm", SNOMED, "399068003")  # Malignant tumor of prostate
    assert not has("malignant-neoplasm", SNOMED, "266987004")  # history of: a situation
    assert has("fracture-hip-femur-pelvis-spine", SNOMED, "5913000")  # Fracture of neck of femur
    assert not has("fracture-hip-femur-pelvis-spine", SNOMED, "206213006")  # birth trauma
    assert has("pregnancy", SNOMED, "77386006")
    assert not has("pregnancy", SNOMED, "60001007")  # Not pregnant
    assert has("saddle-area", SNOMED, "38864007")  # Perineal structure
