"""Likely causes: ranking, facts for and against, what is missing."""

from __future__ import annotations

from tests.fhir import condition, observation, patient


def _ranked(assessment, content) -> list[str]:
    limit = content.differential.show_from_points
    return [r.cause.id for r in assessment.causes if r.shown(limit)]


def test_documented_hamstring_strain_ranks_first(assessment_of, content):
    a = assessment_of(condition("hamstring_strain", onset_days=3),
                      condition("thigh_pain", onset_days=3))
    ranked = _ranked(a, content)
    assert ranked[0] == "hamstring_strain"
    top = a.causes[0]
    assert top.documented.met and top.points == 4


def test_cramps_from_low_potassium_and_dehydration(assessment_of, content):
    a = assessment_of(observation("potassium", 3.1, "mmol/L", days=2),
                      condition("dehydration", onset_days=2))
    cramps = next(r for r in a.causes if r.cause.id == "cramps")
    assert {r.criterion.id for r in cramps.met("supports")} == {"low_potassium", "dehydration"}
    assert "cramps" in _ranked(a, content)


def test_normal_potassium_is_not_evidence_for_cramps(assessment_of):
    a = assessment_of(observation("potassium", 4.2, "mmol/L", days=2))
    cramps = next(r for r in a.causes if r.cause.id == "cramps")
    assert cramps.points == 0


def test_sciatica_lowers_hamstring_strain(assessment_of):
    a = assessment_of(condition("hamstring_strain", onset_days=3),
                      condition("sciatica", onset_days=3))
    strain = next(r for r in a.causes if r.cause.id == "hamstring_strain")
    assert [r.criterion.id for r in strain.met("against")] == ["radicular_signs"]


def test_age_alone_does_not_make_a_likely_cause(assessment_of, content):
    a = assessment_of(patient(birth="1940-01-01"))
    assert _ranked(a, content) == []


def test_missing_facts_are_listed(assessment_of):
    a = assessment_of(condition("cramp", onset_days=2))
    cramps = next(r for r in a.causes if r.cause.id == "cramps")
    missing = {r.criterion.id for r in cramps.missing}
    assert {"low_potassium", "low_magnesium"} <= missing
