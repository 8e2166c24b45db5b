"""Raw FHIR to PatientRecord: statuses, units, invalid resources, other patients."""

from __future__ import annotations

from tests.fhir import build_record, condition, observation, patient


def test_age_and_sex_from_patient(content):
    record = build_record(content, patient(birth="1966-11-25", gender="male"))
    assert record.age == 59 and record.sex == "male"


def test_condition_statuses(content):
    record = build_record(
        content,
        condition("sciatica", clinical="active", rid="a"),
        condition("sciatica", clinical="resolved", rid="b"),
        condition("sciatica", verification="refuted", rid="c"),
        condition("sciatica", verification="entered-in-error", rid="d"),
        condition("sciatica", verification="provisional", rid="e"),
    )
    by_id = {f.reference: f for f in record.findings["sciatica"]}
    assert by_id["Condition/a"].status == "active"
    assert by_id["Condition/b"].status == "history"
    assert by_id["Condition/c"].status == "refuted"
    assert "Condition/d" not in by_id
    assert by_id["Condition/e"].tentative and "provisional" in by_id["Condition/e"].text


def test_icd10cm_codes_match_with_or_without_dot(content):
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    record = build_record(content,
                    condition(code={"system": icd, "code": "M54.31"}, rid="dotted"),
                    condition(code={"system": icd, "code": "M5432"}, rid="undotted"))
    refs = {f.reference for f in record.findings["sciatica"]}
    assert refs == {"Condition/dotted", "Condition/undotted"}


def test_unrelated_codes_are_not_parsed(content):
    unrelated = condition(code={"system": "http://snomed.info/sct", "code": "38341003"})
    record = build_record(content, unrelated)
    assert not any(record.findings.values())
    assert record.counts["Condition"] == 1


def test_invalid_resource_is_skipped_and_reported(content):
    broken = observation("heart_rate", 80, "/min", rid="bad")
    broken["valueQuantity"]["value"] = "a lot"
    good = observation("heart_rate", 81, "/min", rid="good")
    record = build_record(content, broken, good)
    assert [m.reference for m in record.measurements["heart_rate"]] == ["Observation/good"]
    assert any(s.startswith("Observation/bad: invalid FHIR") for s in record.skipped)


def test_resources_about_another_patient_are_ignored(content):
    record = build_record(content, condition("sciatica", pid="someone-else", rid="x"))
    assert not record.findings.get("sciatica")
    assert any("another patient" in s for s in record.skipped)


def test_exam_finding_recorded_absent_is_a_negative(content):
    absent = observation("leg_swelling", False, code=None)
    record = build_record(content, absent)
    assert record.findings["leg_swelling"][0].status == "refuted"


def test_pain_score_as_integer(content):
    obs = observation("pain_score")
    obs["valueInteger"] = 7
    record = build_record(content, obs)
    assert record.measurements["pain_score"][0].value == 7


def test_results_older_than_any_rule_window_are_not_parsed(content):
    old = [observation("heart_rate", 120, "/min", days=30 + i) for i in range(50)]
    record = build_record(content, *old, observation("heart_rate", 80, "/min", hours=2))
    assert len(record.measurements["heart_rate"]) == 1
    assert record.counts["Observation outside the rules' time windows"] == 50


def test_old_ddimer_is_kept_to_say_it_is_too_old(content):
    record = build_record(content, observation("ddimer_feu", 0.3, "ug/mL", days=400))
    assert len(record.measurements["ddimer_feu"]) == 1
