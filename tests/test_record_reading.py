"""The request path reads only the elements the rules use, checks each against its FHIR
datatype, and never raises: malformed read elements are skipped and reported, answers of
"unknown" are unknown, and what no rule reads (deep extensions, stray types) costs nothing.
Whole-resource validation stays available as `cds replay --strict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cds.cli import app
from tests.fhir import (
    build_record,
    condition,
    hook_request,
    observation,
    patient,
)

DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _ces(assessment):
    return next(r for r in assessment.red_flags if r.family.id == "cauda_equina")


# ---------------------------------------------------------------- unknown is not present


def test_urinary_retention_answered_asked_unknown_is_a_question_not_a_red_flag(assessment_of):
    asked = observation("urinary_retention", rid="asked")
    asked["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "asked-unknown"}]}
    ces = _ces(assessment_of(asked))
    assert not ces.fired
    assert "urinary" in {r.criterion.id for r in ces.unknown}


def test_an_unknown_coded_answer_is_not_present_either(assessment_of):
    unknown = observation("urinary_retention")
    unknown["valueCodeableConcept"] = {"coding": [{"system": "http://snomed.info/sct",
                                                   "code": "261665006", "display": "Unknown"}]}
    assert not _ces(assessment_of(unknown)).fired


def test_urinary_retention_observed_or_answered_yes_still_fires(assessment_of):
    observed = observation("urinary_retention")  # the finding itself as the code, no value
    yes = observation("urinary_retention", True)
    assert _ces(assessment_of(observed)).fired
    assert _ces(assessment_of(yes)).fired


def test_a_value_beside_a_data_absent_reason_is_reported_invalid(content):
    both = observation("heart_rate", 120, "/min", rid="both")
    both["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "unknown"}]}
    record = build_record(content, both)
    assert not record.measurements.get("heart_rate")
    assert any(s.startswith("Observation/both: invalid FHIR (dataAbsentReason")
               for s in record.skipped)


# ---------------------------------------------------------------- malformed read elements


@pytest.mark.parametrize(("change", "where"), [
    ({"effectiveDateTime": "2026-11-24T10:00:00"}, "effectiveDateTime"),  # no time zone
    ({"effectiveDateTime": "2026-02-30"}, "effectiveDateTime"),  # no such day
    ({"valueQuantity": {"value": True, "unit": "/min"}}, "valueQuantity.value"),
    ({"valueInteger": 80}, "value[x]"),  # a second value
    ({"status": ["final"]}, "status"),
    ({"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}, 5]}}, "coding[1]"),
    ({"subject": "Patient/pt-1"}, "subject"),
    ({"id": "not an id!"}, "id"),
])
def test_malformed_elements_the_rules_read_are_skipped_and_reported(content, change, where):
    broken = {**observation("heart_rate", 120, "/min", rid="bad"), **change}
    good = observation("heart_rate", 81, "/min", rid="good")
    record = build_record(content, broken, good)
    assert [m.reference for m in record.measurements["heart_rate"]] == ["Observation/good"]
    [note] = record.skipped
    assert "invalid FHIR" in note and where in note


def test_elements_no_rule_reads_are_not_checked_on_the_request_path(content):
    odd = {**observation("heart_rate", 120, "/min", rid="odd"), "category": 5,
           "note": {"text": 1}, "madeUpElement": True}
    record = build_record(content, odd)
    assert [m.value for m in record.measurements["heart_rate"]] == [120]
    assert not record.skipped


@pytest.mark.parametrize("value", [1.5, "x", {"coding": 1}, [None]])
def test_wrong_types_in_codes_never_raise(content, value):
    weird = condition("urinary_retention")
    weird["code"]["coding"] = value
    also = condition("sciatica")
    also["clinicalStatus"] = {"coding": value}
    record = build_record(content, weird, also)  # nothing raised
    assert not record.findings.get("urinary_retention")


# ---------------------------------------------------------------- over HTTP


def _nested_extension(depth: int) -> str:
    """JSON text of an extension nested `depth` levels (built as text: too deep for json)."""
    return ('{"url":"http://example.org/x","extension":[' * depth
            + '{"url":"http://example.org/leaf","valueString":"x"}' + "]}" * depth)


def _post(client: TestClient, body: str) -> Any:
    return client.post("/cds-services/thigh-pain", content=body.encode(),
                       headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("depth", [300, 450])
def test_deeply_nested_extensions_are_answered_not_crashed(client: TestClient, depth):
    request = hook_request(observation("heart_rate", 124, "/min", rid="fast"),
                           condition("urinary_retention"))
    body = json.dumps(request)
    marker = '"resourceType": "Observation"'
    nested = f'"extension": [{_nested_extension(depth)}], {marker}'
    body = body.replace(marker, nested, 1)
    body = body.replace('"hook": ', f'"extension": {{"x": {_nested_extension(depth)}}}, '
                                    '"hook": ', 1)
    reply = _post(client, body)
    assert reply.status_code == 200, reply.text
    text = json.dumps(reply.json())
    assert "Observation/fast" in text  # the heart rate was read, its extensions ignored


def test_nesting_past_the_decoder_limit_is_a_400(client: TestClient):
    request = json.dumps(hook_request())
    body = request.replace('"hook": ', f'"extension": {{"x": {_nested_extension(1100)}}}, '
                                       '"hook": ', 1)
    reply = _post(client, body)
    assert reply.status_code == 400
    assert reply.json()["error"] == "malformed JSON"


def test_a_bundle_whose_entry_is_not_a_list_is_refused_not_crashed(client: TestClient):
    request = hook_request(condition("sciatica"))
    request["prefetch"]["conditions"]["entry"] = 5
    reply = client.post("/cds-services/thigh-pain", json=request)
    # required data sent broken, with no server to fetch it from: the request is wrong (400,
    # naming the key), as issue 11 asks for wrong types
    assert reply.status_code == 400
    assert "conditions" in reply.json()["error"]


def test_wrong_types_in_prefetch_resources_are_answered(client: TestClient):
    weird = condition("sciatica")
    weird["code"]["coding"] = 1.5
    obs = observation("heart_rate", 120, "/min")
    obs["code"] = {"coding": [{"system": 5, "code": ["8867-4"]}]}
    reply = client.post("/cds-services/thigh-pain", json=hook_request(weird, obs))
    assert reply.status_code == 200, reply.text


# ---------------------------------------------------------------- cds replay --strict


def test_replay_strict_reports_what_the_request_path_does_not_check(tmp_path: Path):
    odd = {**observation("heart_rate", 120, "/min", rid="odd"), "madeUpElement": True}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in (patient(), odd)]}
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(bundle))
    plain = CliRunner().invoke(app, ["replay", str(path), "--as-of", "2026-11-24", "--json"])
    assert plain.exit_code == 0, plain.output
    strict = CliRunner().invoke(app, ["replay", str(path), "--as-of", "2026-11-24", "--json",
                                      "--strict"])
    assert strict.exit_code == 1
    [outcome] = json.loads(strict.stdout)
    assert outcome["ok"] and outcome["response"]["cards"] is not None
    [line] = outcome["invalid"]
    assert line.startswith("Observation/odd: madeUpElement")
