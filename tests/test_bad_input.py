"""Bad input is a 4xx with a message, or a resource skipped and named: never a 500, never a
value no patient could have."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from cds.record import RecordBuilder
from cds.terminology import Terminology
from tests.fhir import AS_OF, PATIENT_ID, condition, hook_request, observation, patient


def _post(client: TestClient, body: dict, path: str = "/cds-services/thigh-pain"):
    # json.dumps keeps lone surrogates as \ud800 escapes, as a hostile client would send them
    return client.post(path, content=json.dumps(body),
                       headers={"Content-Type": "application/json"})


def test_bundle_entry_that_is_not_a_list_is_400_naming_it(client) -> None:
    request = hook_request(condition("thigh_pain"))
    request["prefetch"]["conditions"]["entry"] = 5
    reply = _post(client, request)
    assert reply.status_code == 400
    assert reply.json()["error"] == "prefetch 'conditions': Bundle.entry is not a list"


def test_optional_bundle_with_a_broken_entry_is_named_on_the_cards(client) -> None:
    request = hook_request(condition("thigh_pain"))
    request["prefetch"]["procedures"]["entry"] = {"resource": 1}
    reply = _post(client, request)
    assert reply.status_code == 200
    assert "Bundle.entry is not a list" in reply.text


@pytest.mark.parametrize("coding", [1.5, "x", {"code": "1"}, None, [None, 3]])
def test_coding_of_the_wrong_type_does_not_break_the_call(client, coding) -> None:
    bad = condition("dvt")
    bad["code"]["coding"] = coding
    reply = _post(client, hook_request(condition("thigh_pain"), bad))
    assert reply.status_code == 200


@pytest.mark.parametrize("site", [{"coding": 1.5}, [{"coding": 1.5}], [{"coding": "x"}], 7])
def test_body_site_of_the_wrong_type_does_not_break_the_call(client, site) -> None:
    bad = condition("sciatica")
    bad["bodySite"] = site
    reply = _post(client, hook_request(condition("thigh_pain"), bad))
    assert reply.status_code == 200


def _deep_extension(depth: int) -> list[dict]:
    extension: dict = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        extension = {"url": "http://example.org/level", "extension": [extension]}
    return [extension]


@pytest.mark.parametrize("depth", [300, 450])
def test_deeply_nested_extension_does_not_break_the_call(client, content, depth) -> None:
    """Extensions no rule reads are never walked: the condition is read, the call answers."""
    deep = condition("urinary_retention", rid="deep-1")
    deep["extension"] = _deep_extension(depth)
    reply = _post(client, hook_request(condition("thigh_pain"), deep))
    assert reply.status_code == 200
    builder = RecordBuilder(content, Terminology.from_content(content))
    record = builder.build(PATIENT_ID, {"Patient": [patient()], "Condition": [deep]}, None,
                           AS_OF)
    assert "urinary_retention" in record.findings or any(
        note.startswith("Condition/deep-1") for note in record.skipped)


@pytest.mark.parametrize("where", ["userComment", "card"])
def test_lone_surrogate_in_feedback_is_400(client, where) -> None:
    item = {"card": str(uuid.uuid4()), "outcome": "overridden",
            "overrideReason": {"userComment": "fine"},
            "outcomeTimestamp": "2026-11-24T12:05:00Z"}
    if where == "card":
        item["card"] = "card-\ud800"
    else:
        item["overrideReason"]["userComment"] = "seen \udc00 yesterday"
    reply = _post(client, {"feedback": [item]}, "/cds-services/thigh-pain/feedback")
    assert reply.status_code == 400
    assert "surrogate" in reply.text
    paired = {**item, "card": str(uuid.uuid4()),
              "overrideReason": {"userComment": "seen \U0001f600 yesterday"}}
    reply = _post(client, {"feedback": [paired]}, "/cds-services/thigh-pain/feedback")
    assert reply.status_code == 200  # a real emoji (a surrogate pair in JSON) is text


# ---------------------------------------------------------------- implausible values


def _record(content, *resources):
    builder = RecordBuilder(content, Terminology.from_content(content))
    by_kind: dict[str, list] = {"Patient": [patient()], "Observation": list(resources)}
    return builder.build(PATIENT_ID, by_kind, None, AS_OF)


@pytest.mark.parametrize(("concept", "value", "unit"), [
    ("body_temperature", 1e308, "Cel"),
    ("body_temperature", -40, "Cel"),
    ("ddimer_feu", -1e308, "ug/L"),
    ("ddimer_feu", -0.2, "mg/L"),
    ("heart_rate", 1e9, "/min"),
    ("oxygen_saturation", 140, "%"),
    ("pain_score", 11, "{score}"),
])
def test_implausible_values_are_skipped_and_named(content, concept, value, unit) -> None:
    record = _record(content, observation(concept, value, unit, rid="odd-1"))
    assert concept not in record.measurements
    assert any(note.startswith("Observation/odd-1:") and "outside the plausible range" in note
               for note in record.skipped), record.skipped


def test_plausible_extremes_are_still_used(content) -> None:
    record = _record(content, observation("body_temperature", 41.5, "Cel"),
                     observation("ddimer_feu", 0, "ug/L"))
    assert record.measurements["body_temperature"][0].value == 41.5
    assert record.measurements["ddimer_feu"][0].value == 0


def test_an_implausible_reference_range_is_not_used_as_a_cut_off(content) -> None:
    odd = observation("ddimer_feu", 300, "ug/L", high=-1e308)
    record = _record(content, odd)
    assert record.measurements["ddimer_feu"][0].high is None


def test_a_temperature_of_1e308_raises_no_fever_card(client) -> None:
    request = hook_request(condition("thigh_pain"),
                           observation("body_temperature", 1e308, "Cel", rid="t-1"))
    reply = _post(client, request)
    assert reply.status_code == 200
    assert not any("signs of infection" in c["summary"] for c in reply.json()["cards"])
    assert "Body temperature value 1e+308 Cel is outside the plausible range" in reply.text


def test_every_observation_concept_has_plausibility_bounds(content) -> None:
    for concept_id, concept in content.concepts.items():
        if concept.kind == "observation" and concept.unit:
            assert concept.plausible is not None, concept_id


@pytest.mark.parametrize(("body", "where"), [
    (b'{"a": "\\ud800"}', 7),  # a high surrogate alone
    (b'{"a": "x\\udc00"}', 8),  # a low surrogate alone
    (b'{"a": "\\ud800\\ud800\\udc00"}', 7),  # two highs, one low
    ('{"a": "\udc00"}'.encode("utf-8", "surrogatepass"), 7),  # as raw bytes
    (b'{"a": "\\ud83d\\ude00"}', None),  # a pair: an emoji, written as escapes
    (b'{"a": "\\\\ud800"}', None),  # an escaped backslash, then text
    ('{"a": "\U0001f600"}'.encode(), None),
])
def test_lone_surrogates_are_found_where_they_are(body, where) -> None:
    from cds.request_text import lone_surrogate

    assert lone_surrogate(body) == where


def test_lone_surrogate_anywhere_in_a_hook_request_is_400(client) -> None:
    """A lone surrogate in a resource id would end up in a card's references."""
    request = hook_request(condition("thigh_pain"),
                           observation("heart_rate", 120, "/min", rid="hr-\udc00"))
    reply = _post(client, request)
    assert reply.status_code == 400
    assert "lone UTF-16 surrogate" in reply.text
