"""Missing prefetch is fetched from the EHR's FHIR server (mocked with `responses`)."""

from __future__ import annotations

import json
import re

import pytest
import requests
import responses

from cds.hooks import HookRequest
from cds.prefetch import FetchLimits, PreconditionFailed, TemplateError, fill_template, gather
from tests.fhir import PATIENT_ID, condition, hook_request, observation, patient, searchset

BASE = "https://ehr.example.org/fhir"
TOKEN = "very-secret-token"


def _request_without_prefetch(**extra) -> HookRequest:
    raw = hook_request(fhirServer=BASE, fhirAuthorization={
        "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "thigh-pain-cds", "patient": PATIENT_ID}, **extra)
    raw.pop("prefetch")
    return HookRequest.model_validate(raw)


def _mock_server(rsps: responses.RequestsMock, conditions: list, observations: list) -> None:
    rsps.get(f"{BASE}/Patient/{PATIENT_ID}", json=patient())
    rsps.get(re.compile(rf"{re.escape(BASE)}/Condition\?.*"), json=searchset(conditions))
    rsps.get(re.compile(rf"{re.escape(BASE)}/Observation\?.*"), json=searchset(observations))
    rsps.get(re.compile(rf"{re.escape(BASE)}/Procedure\?.*"), json=searchset([]))
    rsps.get(re.compile(rf"{re.escape(BASE)}/MedicationRequest\?.*"), json=searchset([]))


@responses.activate
def test_missing_prefetch_is_fetched_with_the_bearer_token(content, call) -> None:
    _mock_server(responses.mock, [condition("dvt", clinical="resolved", onset_days=500)],
                 [observation("heart_rate", 88, "/min")])
    data = gather(_request_without_prefetch(), content)
    assert data.missing == {}
    assert set(data.fetched) == {"patient", "conditions", "observations", "findings",
                                 "procedures", "medications"}
    for sent in responses.calls:
        assert sent.request.headers["Authorization"] == f"Bearer {TOKEN}"
    urls = [c.request.url for c in responses.calls]
    assert any("Observation?patient=pt-1&code=http://loinc.org|" in u.replace("%7C", "|")
               for u in urls)
    assert len(data.resources["Condition"]) == 1


@responses.activate
def test_fetched_data_gives_the_same_cards_as_prefetch(call) -> None:
    dvt = condition("dvt", clinical="resolved", onset_days=500, rid="c-dvt")
    swelling = condition("leg_swelling", rid="c-swell")
    _mock_server(responses.mock, [dvt, swelling], [])
    fetched = call(_request_without_prefetch().model_dump(mode="json", exclude_none=True))
    prefetched = call(hook_request(dvt, swelling))
    assert [c.summary for c in fetched.cards] == [c.summary for c in prefetched.cards]


@responses.activate
def test_bundle_next_links_are_followed_on_the_same_host(content) -> None:
    page2 = f"{BASE}/Condition?page=2"
    first = searchset([condition("sciatica")])
    first["link"] = [{"relation": "next", "url": page2}]
    responses.get(f"{BASE}/Patient/{PATIENT_ID}", json=patient())
    responses.get(page2, json=searchset([condition("low_back_pain")]))
    responses.get(re.compile(rf"{re.escape(BASE)}/Condition\?patient.*"), json=first)
    for kind in ("Observation", "Procedure", "MedicationRequest"):
        responses.get(re.compile(rf"{re.escape(BASE)}/{kind}\?.*"), json=searchset([]))
    data = gather(_request_without_prefetch(), content)
    assert len(data.resources["Condition"]) == 2


@pytest.mark.parametrize("link", [
    "https://evil.example.com/steal",
    "https://ehr.example.org/admin/Condition?p=2",  # same host, outside the FHIR base path
    "https://ehr.example.org:8443/fhir/Condition?p=2",  # another port
    "http://ehr.example.org/fhir/Condition?p=2",  # downgraded scheme
    "https://user@ehr.example.org/fhir/Condition?p=2",  # userinfo
    "https://ehr.example.org/fhir/../admin/Condition",  # dot segments
])
@responses.activate
def test_paging_links_stay_inside_the_fhir_server_base(content, link) -> None:
    first = searchset([condition("sciatica")])
    first["link"] = [{"relation": "next", "url": link}]
    _mock_server(responses.mock, [], [])
    responses.replace(responses.GET, re.compile(rf"{re.escape(BASE)}/Condition\?.*"), json=first)
    with pytest.raises(PreconditionFailed, match="outside the fhirServer"):
        gather(_request_without_prefetch(), content)
    assert [c.request.url for c in responses.calls if "Condition" in c.request.url] == [
        responses.calls[1].request.url]  # only the first page was read


@responses.activate
def test_page_bound_stops_endless_paging(content) -> None:
    looping = searchset([condition("sciatica")])
    looping["link"] = [{"relation": "next", "url": f"{BASE}/Condition?patient=pt-1&p=again"}]
    _mock_server(responses.mock, [], [])
    responses.replace(responses.GET, re.compile(rf"{re.escape(BASE)}/Condition\?.*"),
                      json=looping)
    with pytest.raises(PreconditionFailed, match="more than 3 pages"):
        gather(_request_without_prefetch(), content, FetchLimits(max_pages=3))


def _two_pages_per_query(rsps: responses.RequestsMock, per_page: list[dict]) -> None:
    """Every search answers with a page that links to one more page of the same size."""
    rsps.get(f"{BASE}/Patient/{PATIENT_ID}", json=patient())
    for kind in ("Condition", "Observation", "Procedure", "MedicationRequest"):
        first = searchset(per_page)
        first["link"] = [{"relation": "next", "url": f"{BASE}/{kind}?page=2"}]
        rsps.get(f"{BASE}/{kind}?page=2", json=searchset(per_page))
        rsps.get(re.compile(rf"{re.escape(BASE)}/{kind}\?patient.*"), json=first)


@pytest.mark.parametrize(("limits", "expected"), [
    (FetchLimits(max_pages=6), "more than 6 pages in one call"),
    (FetchLimits(max_resources=15), "more than 15 resources in one call"),
    (FetchLimits(max_bytes=8_000), "more than 8000 bytes in one call"),
])
@responses.activate
def test_limits_hold_for_the_whole_call_not_each_query(content, limits, expected) -> None:
    """Each query alone is within every limit (2 pages, 4 resources, ~3 kB); the call is not:
    the optional queries that come after the limit is reached are named as data gaps."""
    _two_pages_per_query(responses.mock, [condition("sciatica") for _ in range(2)])
    data = gather(_request_without_prefetch(), content, limits)
    assert expected in " ".join(data.missing.values())
    assert {"patient", "conditions", "observations"} <= set(data.fetched)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"status": 500, "json": {}}, "HTTP 500"),
        ({"status": 401, "json": {}}, "HTTP 401"),
        ({"status": 404, "json": {}}, "HTTP 404"),
        ({"body": requests.Timeout("slow")}, "did not answer in time"),
        ({"body": requests.ConnectionError("down")}, "could not be reached"),
        ({"body": "<html>oops</html>", "status": 200}, "not JSON"),
        ({"json": {"resourceType": "Bundle", "entry": 5}}, "Bundle.entry is not a list"),
    ],
)
@responses.activate
def test_optional_data_that_cannot_be_fetched_is_a_named_gap(content, call, kwargs,
                                                              expected) -> None:
    _mock_server(responses.mock, [condition("thigh_pain", onset_days=1)], [])
    responses.replace(responses.GET, re.compile(rf"{re.escape(BASE)}/Procedure\?.*"), **kwargs)
    request = _request_without_prefetch()
    data = gather(request, content)
    assert expected in data.missing["Procedure"]
    cards = call(request.model_dump(mode="json", exclude_none=True)).cards
    assert all(TOKEN not in (c.detail or "") for c in cards)
    assert any(expected in (c.detail or "") for c in cards)
    # no card may claim everything is clear when data could not be read
    assert not any("no red flags" in c.summary.lower() for c in cards)


@pytest.mark.parametrize(("key", "url"), [
    ("patient", f"{BASE}/Patient/{PATIENT_ID}"),
    ("conditions", re.compile(rf"{re.escape(BASE)}/Condition\?.*")),
    ("observations", re.compile(rf"{re.escape(BASE)}/Observation\?.*")),
])
@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"status": 404, "json": {}}, "HTTP 404"),
    ({"status": 500, "json": {}}, "HTTP 500"),
    ({"body": requests.ConnectionError("refused")}, "could not be reached"),
])
@responses.activate
def test_required_data_that_cannot_be_fetched_is_412_naming_it(client, key, url, kwargs,
                                                               expected) -> None:
    """CDS Hooks 2.0: unable to obtain required data without prefetch, the service SHALL
    answer 412; the message names the prefetch key and why."""
    responses.add_passthru("http://testserver")
    _mock_server(responses.mock, [], [])
    responses.replace(responses.GET, url, **kwargs)
    request = _request_without_prefetch().model_dump(mode="json", exclude_none=True)
    reply = client.post("/cds-services/thigh-pain", json=request)
    assert reply.status_code == 412, reply.text
    message = reply.json()["error"]
    assert f"{key} (" in message and expected in message
    assert TOKEN not in reply.text


def test_token_is_not_in_the_repr_of_the_request() -> None:
    request = _request_without_prefetch()
    assert TOKEN not in repr(request.fhirAuthorization)
    assert TOKEN not in str(request.fhirAuthorization)


def test_template_tokens() -> None:
    request = HookRequest.model_validate(hook_request())
    assert fill_template("Patient/{{context.patientId}}", request) == f"Patient/{PATIENT_ID}"
    assert fill_template("Practitioner/{{userPractitionerId}}", request) == "Practitioner/dr-1"
    assert fill_template("{{context.userId}}", request) == "Practitioner/dr-1"
    with pytest.raises(TemplateError):
        fill_template("Patient/{{userPatientId}}", request)
    with pytest.raises(TemplateError):
        fill_template("Encounter/{{context.encounterId}}", request)


def test_null_patient_prefetch_means_no_patient_found(call) -> None:
    request = hook_request(condition("sciatica"))
    request["prefetch"]["patient"] = None
    response = call(request)
    assert response.cards
    assert json.dumps(response.wire())
