"""Two-level Wells score for DVT (NICE NG158, Wells 2003): each criterion, unknowns, bands."""

from __future__ import annotations

import pytest

from cds.reasoning.facts import Truth
from tests.fhir import condition, procedure


def _result(assessment, criterion_id: str):
    return next(r for r in assessment.dvt.wells.results if r.criterion.id == criterion_id)


@pytest.mark.parametrize(
    ("criterion", "resource"),
    [
        ("active_cancer", lambda: condition("active_cancer", onset_days=60)),
        ("paralysis", lambda: condition("lower_limb_paralysis", onset_days=200)),
        ("bedridden_or_surgery", lambda: condition("bedridden", onset_days=5)),
        ("bedridden_or_surgery", lambda: procedure("major_surgery", days=30)),
        ("deep_vein_tenderness", lambda: condition("leg_tenderness", onset_days=2)),
        ("entire_leg_swollen", lambda: condition("leg_swelling", onset_days=2)),
        ("pitting_oedema", lambda: condition("leg_oedema", onset_days=2)),
        ("previous_dvt", lambda: condition("dvt", clinical="resolved", onset_days=700)),
        ("previous_dvt", lambda: condition("dvt_history", onset_days=None)),
        ("alternative_diagnosis", lambda: condition("alternative_dx_dvt", onset_days=3)),
    ],
)
def test_each_computable_criterion_is_met_from_the_chart(assessment_of, criterion, resource):
    result = _result(assessment_of(resource()), criterion)
    assert result.truth is Truth.MET
    assert result.answer.evidence[0].reference.startswith(("Condition/", "Procedure/"))


def test_absent_data_is_unknown_not_negative(assessment_of):
    wells = assessment_of().dvt.wells
    assert wells.points == 0
    assert wells.band is None, "with nothing documented the band cannot be known"
    assert all(r.truth is Truth.UNKNOWN for r in wells.results)
    assert "criteria unknown" in wells.describe()


def test_two_documented_points_are_likely_whatever_else_is_unknown(assessment_of):
    a = assessment_of(condition("active_cancer"), condition("leg_swelling"))
    assert a.dvt.wells.points == 2
    assert a.dvt.wells.band is not None and a.dvt.wells.band.id == "likely"
    assert a.dvt.step.id == "likely-no-ddimer"
    # the -2 judgement is stated, not silently assumed
    assert [r.criterion.id for r in a.dvt.wells.pending_judgement] == ["alternative_diagnosis"]


def test_one_point_with_unknowns_is_not_called_unlikely(assessment_of):
    a = assessment_of(condition("active_cancer"))
    assert a.dvt.wells.points == 1
    assert a.dvt.wells.band is None
    assert a.dvt.step.when_band == "indeterminate"
    assert a.dvt.wells.low == 1 and a.dvt.wells.high > 2


def test_old_surgery_does_not_count(assessment_of):
    result = _result(assessment_of(procedure("major_surgery", days=200)), "bedridden_or_surgery")
    assert result.truth is Truth.UNKNOWN


def test_refuted_finding_is_not_met(assessment_of):
    a = assessment_of(condition("leg_swelling", verification="refuted"))
    assert _result(a, "entire_leg_swollen").truth is Truth.NOT_MET


def test_entered_in_error_is_ignored(assessment_of):
    a = assessment_of(condition("active_cancer", verification="entered-in-error"))
    assert _result(a, "active_cancer").truth is Truth.UNKNOWN


def test_resolved_dvt_is_history_not_a_current_dvt(assessment_of):
    a = assessment_of(condition("dvt", clinical="resolved", onset_days=30))
    assert _result(a, "previous_dvt").truth is Truth.MET
    assert a.dvt.step.when_band != "diagnosed"


def test_active_recent_dvt_changes_the_question(assessment_of):
    a = assessment_of(condition("dvt", onset_days=3))
    assert a.dvt.step.id == "diagnosed"


def test_old_exam_signs_do_not_count(assessment_of):
    a = assessment_of(condition("leg_swelling", onset_days=60))
    assert _result(a, "entire_leg_swollen").truth is Truth.UNKNOWN


def test_documented_alternative_diagnosis_subtracts_two(assessment_of):
    a = assessment_of(condition("active_cancer"), condition("leg_swelling"),
                      condition("alternative_dx_dvt", onset_days=2))
    assert a.dvt.wells.points == 0
