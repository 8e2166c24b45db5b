"""D-dimer: FEU vs DDU, unit conversion, age-adjusted cut-off, recency, pathway step."""

from __future__ import annotations

import pytest

from cds.reasoning.dvt import latest_ddimer
from tests.fhir import condition, observation, patient


@pytest.mark.parametrize(
    ("value", "unit", "state"),
    [
        (0.4, "ug/mL", "negative"),          # 400 ug/L FEU
        (0.6, "ug/mL", "positive"),          # Synthea sends ug/mL
        (450, "ng/mL", "negative"),
        (450, "ng/mL{FEU}", "negative"),
        (0.55, "mg/L{FEU}", "positive"),
    ],
)
def test_feu_units_are_converted(assessment_of, value, unit, state):
    # aged 36: the conventional 500 ug/L FEU cut-off applies
    a = assessment_of(patient(birth="1990-01-01"), observation("ddimer_feu", value, unit))
    assert a.dvt.ddimer.state == state


def test_ddu_uses_its_own_cut_off(assessment_of):
    # 300 ug/L is below the FEU cut-off (500) but above the DDU one (250)
    a = assessment_of(patient(birth="1990-01-01"), observation("ddimer_ddu", 300, "ng/mL{DDU}"))
    assert a.dvt.ddimer.state == "positive"


def test_age_adjusted_cut_off_over_50(assessment_of):
    old = patient(birth="1946-01-01")  # 80 years old: cut-off 800 ug/L FEU
    a = assessment_of(old, observation("ddimer_feu", 700, "ug/L"))
    assert a.dvt.ddimer.state == "negative"
    assert "age-adjusted" in a.dvt.ddimer.threshold_basis
    young = patient(birth="1990-01-01")
    b = assessment_of(young, observation("ddimer_feu", 700, "ug/L"))
    assert b.dvt.ddimer.state == "positive"


def test_laboratory_reference_range_is_used_when_sent(assessment_of):
    a = assessment_of(patient(birth="1990-01-01"),
                      observation("ddimer_feu", 550, "ug/L", high=600))
    assert a.dvt.ddimer.state == "negative"
    assert "laboratory" in a.dvt.ddimer.threshold_basis


def test_old_ddimer_does_not_rule_out_todays_dvt(assessment_of):
    a = assessment_of(observation("ddimer_feu", 0.2, "ug/mL", days=365))
    assert a.dvt.ddimer.state == "none"
    assert a.dvt.ddimer.older is not None


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error"])
def test_cancelled_results_never_count(assessment_of, status):
    a = assessment_of(observation("ddimer_feu", 0.2, "ug/mL", status=status))
    assert a.dvt.ddimer.state == "none"


def test_unconvertible_unit_is_skipped_and_reported(content, assessment_of):
    a = assessment_of(observation("ddimer_feu", 3, "mmol/L"))
    assert a.dvt.ddimer.state == "none"
    assert any("cannot convert" in s or "not a" in s for s in a.record.skipped)


def test_latest_result_wins(content, assessment_of):
    a = assessment_of(observation("ddimer_feu", 0.9, "ug/mL", hours=30),
                      observation("ddimer_feu", 0.3, "ug/mL", hours=2))
    assert latest_ddimer(content, a.record).state == "negative"


def test_pathway_likely_with_positive_ddimer_asks_for_ultrasound(assessment_of):
    a = assessment_of(condition("active_cancer"), condition("leg_swelling"),
                      observation("ddimer_feu", 0.9, "ug/mL"))
    assert a.dvt.step.id == "likely-ddimer-positive"
    assert a.dvt.step.orders == ["proximal_leg_ultrasound"]
