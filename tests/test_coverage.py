"""Charts coded the way EHRs code them (issue 9): value sets, body sites and laterality,
verification and clinical statuses, under-read red flags, special populations, units.
Each expectation names the source it follows."""

from __future__ import annotations

from typing import Any

import pytest

from cds.reasoning.facts import Truth
from tests.fhir import ago, condition, observation, patient

SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LEFT = {"system": SCT, "code": "7771000", "display": "Left (qualifier value)"}
RIGHT = {"system": SCT, "code": "24028007", "display": "Right (qualifier value)"}


def _code(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _sited(resource: dict[str, Any], *site: dict[str, str]) -> dict[str, Any]:
    resource["bodySite"] = [{"coding": list(site)}]
    return resource


def _family(assessment, family_id: str):
    return next(r for r in assessment.red_flags if r.family.id == family_id)


def _met(assessment, family_id: str) -> set[str]:
    return {r.criterion.id for r in _family(assessment, family_id).met}


def _wells(assessment, criterion_id: str) -> Truth:
    return next(r.truth for r in assessment.dvt.wells.results
                if r.criterion.id == criterion_id)


# ---------------------------------------------------------------- codes by value set


@pytest.mark.parametrize(("system", "code"), [
    (SCT, "254837009"),  # Malignant neoplasm of breast (disorder) [GPS]
    (SCT, "399068003"),  # Malignant tumor of prostate (disorder) [GPS]
    (ICD, "C61"),  # Malignant neoplasm of prostate [ICD-10-CM 2026]
    (ICD, "C50.911"),
])
def test_specific_cancers_count_as_active_cancer_for_wells(assessment_of, system, code):
    """NICE NG158 Wells: active cancer +1, whichever specific cancer code the EHR sends."""
    a = assessment_of(condition(code=_code(system, code), onset_days=100))
    assert _wells(a, "active_cancer") is Truth.MET
    assert "cancer" in _met(a, "cancer")


def test_snomed_hip_fracture_fires_the_fracture_flag(assessment_of):
    """AHCPR red flags: fracture. 5913000 Fracture of neck of femur (disorder) [GPS]."""
    a = assessment_of(condition(code=_code(SCT, "5913000"), onset_days=10))
    assert "fracture" in _met(a, "fracture")


def test_numbness_at_the_perineum_is_saddle_anaesthesia(assessment_of):
    """GIRFT suspected CES pathway: altered perianal, perineal or genital sensation."""
    numb = _sited(condition(code=_code(SCT, "44077006"), onset_days=1),
                  _code(SCT, "38864007", "Perineal structure (body structure)"))
    a = assessment_of(numb)
    ces = _family(a, "cauda_equina")
    assert ces.indicator == "critical" and "saddle_anaesthesia" in _met(a, "cauda_equina")
    foot = _sited(condition(code=_code(SCT, "44077006"), onset_days=1),
                  _code(SCT, "56459004", "Foot structure (body structure)"))
    assert not _family(assessment_of(foot), "cauda_equina").fired


def test_sciatica_sides_from_laterality_qualifiers(assessment_of):
    """NICE CKS sciatica: bilateral sciatica is a CES red flag; sides from bodySite."""
    left = _sited(condition(code=_code(SCT, "23056005"), onset_days=3), LEFT)
    right = _sited(condition(code=_code(SCT, "23056005"), onset_days=2), RIGHT)
    assert not _family(assessment_of(left), "cauda_equina").fired
    assert "bilateral_sciatica" in _met(assessment_of(left, right), "cauda_equina")
    both = _sited(condition(code=_code(SCT, "23056005"), onset_days=2),
                  _code(SCT, "51440002", "Right and left (qualifier value)"))
    assert "bilateral_sciatica" in _met(assessment_of(both), "cauda_equina")
    expression = _sited(condition(code=_code(SCT, "23056005"), onset_days=2),
                        _code(SCT, "61685007:272741003=7771000"))
    assert "bilateral_sciatica" in _met(assessment_of(expression, right), "cauda_equina")


# ---------------------------------------------------------------- statuses


def test_provisional_dvt_is_a_suspicion_and_runs_the_wells_pathway(assessment_of):
    """A provisional DVT means 'suspected DVT' (FHIR condition-ver-status): NICE NG158's
    Wells pathway, not 'DVT already on record'."""
    dvt = condition("dvt", verification="provisional", onset_days=1)
    a = assessment_of(dvt)
    assert a.dvt.step.when_band != "diagnosed"
    assert a.dvt.suspected is not None and a.dvt.suspected.met
    assert _wells(a, "previous_dvt") is not Truth.MET
    confirmed = assessment_of(condition("dvt", onset_days=1))
    assert confirmed.dvt.step.when_band == "diagnosed"


def test_an_old_dvt_still_active_on_the_problem_list_is_a_previous_dvt(assessment_of):
    """Wells 2003 'previously documented DVT': a DVT from a year ago, still 'active'."""
    a = assessment_of(condition("dvt", onset_days=365))
    assert a.dvt.step.when_band != "diagnosed"
    assert _wells(a, "previous_dvt") is Truth.MET
    pe_prev = next(r for r in a.pe_score.results if r.criterion.id == "previous_vte")
    assert pe_prev.truth is Truth.MET
    recent = assessment_of(condition("dvt", onset_days=20))
    assert recent.dvt.step.when_band == "diagnosed"


# ---------------------------------------------------------------- red flags


def test_spinal_infection_without_fever(assessment_of):
    """NICE CKS low back pain: IV drug use, immunosuppression, raised CRP/ESR with back
    pain are spinal infection red flags."""
    assert "iv_drug_use" in _met(assessment_of(condition("iv_drug_use", onset_days=800)),
                                 "infection")
    steroid = condition(code=_code(ICD, "Z79.52"), onset_days=400)
    assert "immunosuppression" in _met(assessment_of(steroid), "infection")
    hiv = condition(code=_code(ICD, "B20"), onset_days=900)
    assert "immunosuppression" in _met(assessment_of(hiv), "infection")
    back = condition("low_back_pain", onset_days=5)
    crp = observation("crp", 48, "mg/L")
    assert "raised_inflammatory_markers" in _met(assessment_of(back, crp), "infection")
    assert "raised_inflammatory_markers" not in _met(assessment_of(crp), "infection")
    esr = observation("esr", 55, "mm/h")
    assert "raised_inflammatory_markers" in _met(assessment_of(back, esr), "infection")
    normal = observation("crp", 3, "mg/L")
    assert not _family(assessment_of(back, normal), "infection").fired


def test_bilateral_foot_drop_is_a_cauda_equina_flag(assessment_of):
    """NICE CKS sciatica: severe or progressive bilateral neurological deficit."""
    right = condition(code=_code(ICD, "M21.371"), onset_days=3)
    left = condition(code=_code(ICD, "M21.372"), onset_days=1)
    assert "bilateral_deficit" in _met(assessment_of(left, right), "cauda_equina")
    assert not _family(assessment_of(left), "cauda_equina").fired
    weak = _sited(condition(code=_code(SCT, "102568007"), onset_days=2), RIGHT)
    assert "bilateral_deficit" in _met(assessment_of(left, weak), "cauda_equina")


def test_minor_fall_with_osteoporosis_or_age(assessment_of):
    """AHCPR / NICE CKS: minor trauma in older or osteoporotic patients, or on long-term
    corticosteroids."""
    fall = condition("fall", onset_days=3)
    osteo = condition(code=_code(SCT, "64859006"), onset_days=2000)
    assert "minor_trauma_fracture_risk" in _met(assessment_of(fall, osteo), "fracture")
    old = patient(birth="1950-01-01")
    old["id"] = "pt-1"
    assert "minor_trauma_fracture_risk" in _met(assessment_of(old, fall), "fracture")
    young = patient(birth="1990-01-01")
    assert "minor_trauma_fracture_risk" not in _met(assessment_of(young, fall), "fracture")


# ---------------------------------------------------------------- special populations


def _pregnancy_status(answer: str, display: str) -> dict[str, Any]:
    obs = observation("pregnancy_status", days=10)
    obs["valueCodeableConcept"] = {"coding": [_code(SCT, answer, display)]}
    return obs


def test_pregnancy_takes_dvt_out_of_the_wells_pathway(assessment_of):
    """NICE NG158 does not cover pregnancy; RCOG Green-top 37b: compression duplex
    ultrasound whatever the D-dimer."""
    ddimer = observation("ddimer_feu", 0.3, "ug/mL")
    a = assessment_of(_pregnancy_status("77386006", "Pregnant"), ddimer)
    assert a.dvt.step.when_band == "pregnancy"
    assert "compression_duplex_ultrasound" in a.dvt.step.orders
    not_pregnant = assessment_of(_pregnancy_status("60001007", "Not pregnant"), ddimer)
    assert not_pregnant.dvt.step.when_band != "pregnancy"
    possible = assessment_of(_pregnancy_status("146799005", "Possible pregnancy"), ddimer)
    assert possible.dvt.step.when_band != "pregnancy"  # unknown: not assumed
    coded = assessment_of(condition(code=_code(ICD, "Z3A.24"), onset_days=30))
    assert coded.dvt.step.when_band == "pregnancy"
    postpartum = assessment_of(condition(code=_code(SCT, "86569001"), onset_days=20))
    assert postpartum.dvt.step.when_band == "pregnancy"
    long_ago = assessment_of(condition(code=_code(SCT, "86569001"), onset_days=200))
    assert long_ago.dvt.step.when_band != "pregnancy"
    # a pregnancy Condition resolved at birth 3 weeks ago (as Synthea records it): puerperium
    born = condition(code=_code(SCT, "72892002"), clinical="resolved", onset_days=280)
    born["abatementDateTime"] = ago(21)
    assert assessment_of(born).dvt.step.when_band == "pregnancy"
    born["abatementDateTime"] = ago(90)
    assert assessment_of(born).dvt.step.when_band != "pregnancy"


def test_under_18s_are_not_scored_as_adults(assessment_of):
    """NICE NG158's pathway is for adults."""
    teen = patient(birth="2011-01-01")
    a = assessment_of(teen, condition("leg_swelling", onset_days=1))
    assert a.dvt.step.when_band == "under_18"


def test_pregnancy_card_cites_the_evidence_and_rcog(call):
    from tests.fhir import hook_request

    request = hook_request(_pregnancy_status("77386006", "Pregnant"))
    cards = call(request).cards
    dvt = next(c for c in cards if "compression duplex" in c.summary)
    assert dvt.indicator == "warning"
    assert "Pregnancy status Pregnant" in (dvt.detail or "")
    assert dvt.source.label == "RCOG Green-top 37b"


# ---------------------------------------------------------------- units


def test_meq_per_litre_is_mmol_per_litre_for_potassium(assessment_of):
    """UCUM: meq; for a monovalent ion 1 mEq = 1 mmol."""
    k = observation("potassium", 3.0, "meq/L", hours=2)
    a = assessment_of(k)
    values = [m.value for m in a.record.measurements["potassium"]]
    assert values == [3.0]


def test_a_unit_that_cannot_be_converted_is_skipped_and_named(assessment_of):
    ddimer = observation("ddimer_feu", 1.2, "mmol/L", rid="dd-bad")
    a = assessment_of(ddimer)
    assert not a.record.measurements.get("ddimer_feu")
    assert any("dd-bad" in s and "cannot convert" in s for s in a.record.skipped)


def test_acute_retention_of_urine_is_a_cauda_equina_flag(assessment_of):
    """GIRFT suspected CES: new difficulty passing urine. 236648008 Acute retention of urine
    (disorder) [GPS], in the urinary-retention value set."""
    a = assessment_of(condition(code=_code(SCT, "236648008"), onset_days=1))
    assert "urinary" in _met(a, "cauda_equina")


def test_an_old_active_dvt_raises_a_pe_card_as_a_previous_dvt_would(assessment_of):
    """NICE NG158 / Wells PE: previous DVT or PE; the PE card is raised with a risk of DVT."""
    a = assessment_of(condition("dvt", onset_days=365), condition("dyspnea", onset_days=0.2))
    pe = _family(a, "pulmonary_embolism")
    assert pe.fired and pe.indicator == "critical"
