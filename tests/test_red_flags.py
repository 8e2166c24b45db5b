"""Red flags: cauda equina, PE, infection, fracture, neurological deficit, cancer."""

from __future__ import annotations

import pytest

from cds.reasoning.facts import Truth
from tests.fhir import condition, observation, procedure


def _family(assessment, family_id: str):
    return next(r for r in assessment.red_flags if r.family.id == family_id)


def _fired(assessment) -> set[str]:
    return {r.family.id for r in assessment.red_flags if r.fired}


@pytest.mark.parametrize(
    ("concept", "flag"),
    [
        ("urinary_retention", "urinary"),
        ("difficulty_passing_urine", "urinary"),
        ("urinary_incontinence", "urinary_incontinence"),
        ("faecal_incontinence", "faecal_incontinence"),
        ("cauda_equina", "ces_documented"),
    ],
)
def test_new_cauda_equina_features_fire_a_critical_card(assessment_of, concept, flag):
    a = assessment_of(condition(concept, onset_days=2))
    ces = _family(a, "cauda_equina")
    assert ces.fired and ces.indicator == "critical"
    assert flag in {r.criterion.id for r in ces.met}


def test_old_incontinence_is_not_new(assessment_of):
    a = assessment_of(condition("urinary_incontinence", onset_days=900))
    assert "cauda_equina" not in _fired(a)


def test_bilateral_sciatica_needs_both_sides(assessment_of):
    left = condition("sciatica_left", onset_days=3)
    right = condition("sciatica_right", onset_days=3)
    assert "cauda_equina" not in _fired(assessment_of(left))
    a = assessment_of(left, right)
    ces = _family(a, "cauda_equina")
    assert "bilateral_sciatica" in {r.criterion.id for r in ces.met}


def test_saddle_anaesthesia_is_always_asked_about(assessment_of):
    ces = _family(assessment_of(), "cauda_equina")
    unknown = {r.criterion.id for r in ces.unknown}
    assert "saddle_anaesthesia" in unknown


def test_pe_signs_alone_warn(assessment_of):
    a = assessment_of(condition("dyspnea", onset_days=1))
    pe = _family(a, "pulmonary_embolism")
    assert pe.fired and pe.indicator == "warning"


def test_pe_signs_with_dvt_risk_are_critical(assessment_of):
    a = assessment_of(condition("chest_pain", onset_days=1),
                      condition("dvt", clinical="resolved", onset_days=400))
    assert _family(a, "pulmonary_embolism").indicator == "critical"


@pytest.mark.parametrize(
    "resource",
    [
        lambda: observation("heart_rate", 118, "/min"),
        lambda: observation("oxygen_saturation", 91, "%"),
        lambda: condition("haemoptysis", onset_days=1),
    ],
)
def test_pe_signs_from_vitals_and_conditions(assessment_of, resource):
    assert "pulmonary_embolism" in _fired(assessment_of(resource()))


def test_normal_vitals_do_not_fire(assessment_of):
    a = assessment_of(observation("heart_rate", 72, "/min"),
                      observation("oxygen_saturation", 98, "%"))
    pe = _family(a, "pulmonary_embolism")
    assert not pe.fired
    assert {r.criterion.id for r in pe.results if r.truth is Truth.NOT_MET} == {
        "tachycardia", "low_saturation"}


def test_yesterdays_tachycardia_is_not_todays(assessment_of):
    a = assessment_of(observation("heart_rate", 130, "/min", days=3))
    assert "pulmonary_embolism" not in _fired(a)


def test_fever_from_temperature_in_fahrenheit(assessment_of):
    a = assessment_of(observation("body_temperature", 101.3, "[degF]"))
    assert "infection" in _fired(a)
    b = assessment_of(observation("body_temperature", 37.2, "Cel"))
    assert "infection" not in _fired(b)


@pytest.mark.parametrize(
    ("resource", "family"),
    [
        (lambda: condition("chills", onset_days=2), "infection"),
        (lambda: condition("fall", onset_days=5), "fracture"),
        (lambda: condition("unable_to_bear_weight", onset_days=1), "fracture"),
        (lambda: observation("pain_score", 9, "{score}"), "fracture"),
        (lambda: condition(code={"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                 "code": "M21.371"}, onset_days=2), "neurological_deficit"),
        (lambda: condition("cancer_history", clinical="resolved", onset_days=3000), "cancer"),
        (lambda: condition("weight_loss", onset_days=20), "cancer"),
    ],
)
def test_other_red_flags(assessment_of, resource, family):
    assert family in _fired(assessment_of(resource()))


def test_preliminary_result_counts_but_says_so(assessment_of):
    a = assessment_of(observation("heart_rate", 120, "/min", status="preliminary"))
    pe = _family(a, "pulmonary_embolism")
    assert pe.fired
    assert "preliminary" in pe.met[0].answer.evidence[0].text


def test_surgery_does_not_trigger_red_flags_by_itself(assessment_of):
    a = assessment_of(procedure("major_surgery", days=10))
    assert _fired(a) == set()
