"""The Wells SMART app's service side: its Questionnaire, the reader of the answers, the
prefetch key, and the smart links on cards. (The app in a browser: tests/browser.)"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.questionnaire import Questionnaire

from cds.api import create_app
from cds.config import Settings
from cds.content import Content
from cds.feedback import FeedbackStore
from cds.reasoning.facts import Truth
from cds.service import ThighPainService
from cds.smart.apps import smart_apps
from cds.smart.questionnaire import questionnaire
from tests.fhir import AS_OF, PATIENT_ID, ago, condition, hook_request, observation, searchset

WELLS = "urn:thigh-pain-cds:questionnaire:wells-dvt"


def answers(pid: str = PATIENT_ID, days: float = 0, status: str = "completed",
            rid: str = "qr-1", **given: bool) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse", "id": rid, "questionnaire": f"{WELLS}|1",
        "status": status, "subject": {"reference": f"Patient/{pid}"},
        "authored": ago(days, hours=1),
        "item": [{"linkId": k, "answer": [{"valueBoolean": v}]} for k, v in given.items()],
    }


def wells_truths(assessment: Any) -> dict[str, Truth]:
    return {r.criterion.id: r.truth for r in assessment.dvt.wells.results}


def test_questionnaire_is_valid_fhir_with_one_item_per_wells_criterion(content: Content) -> None:
    app = smart_apps(content)[0]
    resource = questionnaire(content, app)
    Questionnaire.model_validate(resource)
    assert resource["url"] == WELLS
    assert [i["linkId"] for i in resource["item"]] == [c.id for c in content.dvt.score.criteria]
    assert {i["type"] for i in resource["item"]} == {"boolean"}
    calf = next(i for i in resource["item"] if i["linkId"] == "calf_swelling")
    assert calf["text"].startswith("Measure both calves")  # the question the card asks


def test_answers_complete_the_wells_score(assessment_of: Any) -> None:
    unknown_before = assessment_of().dvt.wells.unknown
    assert len(unknown_before) >= 6
    given = {r.criterion.id: r.criterion.id == "calf_swelling" for r in unknown_before}
    given["alternative_diagnosis"] = False
    after = assessment_of(answers(**given)).dvt.wells
    assert after.unknown == [] and after.pending_judgement == []
    assert after.points == 1 and after.band is not None and after.band.id == "unlikely"
    calf = next(r for r in after.results if r.criterion.id == "calf_swelling")
    assert calf.answer.evidence[0].reference == "QuestionnaireResponse/qr-1"
    assert "the clinician's answer" in calf.answer.evidence[0].text


def test_the_coded_chart_wins_over_an_answer(assessment_of: Any) -> None:
    swollen_absent = observation("leg_swelling", False, hours=2)
    truths = wells_truths(assessment_of(swollen_absent, answers(entire_leg_swollen=True)))
    assert truths["entire_leg_swollen"] is Truth.NOT_MET


def test_answers_that_do_not_count_are_ignored(assessment_of: Any) -> None:
    ignored = [
        answers(days=20, calf_swelling=True),  # older than answers_valid_days
        answers(pid="someone-else", calf_swelling=True),  # another patient
        answers(status="in-progress", calf_swelling=True),  # not finished
        {**answers(calf_swelling=True), "questionnaire": "urn:other"},  # another questionnaire
    ]
    for response in ignored:
        assert wells_truths(assessment_of(response))["calf_swelling"] is Truth.UNKNOWN


def test_the_latest_answer_wins(assessment_of: Any) -> None:
    old = answers(days=2, rid="qr-old", calf_swelling=True)
    new = answers(days=0, rid="qr-new", calf_swelling=False)
    for order in ((old, new), (new, old)):
        assert wells_truths(assessment_of(*order))["calf_swelling"] is Truth.NOT_MET


def test_hook_reads_answers_from_prefetch_and_says_nothing_when_absent(
        client: TestClient) -> None:
    discovery = client.get("/cds-services").json()["services"][0]
    template = discovery["prefetch"]["wells-dvt-answers"]
    assert template.startswith("QuestionnaireResponse?patient={{context.patientId}}")
    plain = client.post("/cds-services/thigh-pain", json=hook_request()).json()["cards"]
    assert "QuestionnaireResponse" not in str([c.get("detail") for c in plain])
    request = hook_request(condition("leg_swelling", onset_days=1))
    request["prefetch"]["wells-dvt-answers"] = searchset([answers(
        calf_swelling=True, active_cancer=False, paralysis=False, bedridden_or_surgery=False,
        deep_vein_tenderness=False, pitting_oedema=False, collateral_veins=False,
        previous_dvt=False, alternative_diagnosis=False)])
    cards = client.post("/cds-services/thigh-pain", json=request).json()["cards"]
    assert any(c["summary"].startswith("DVT likely (Wells 2)") for c in cards)


def test_wells_cards_link_the_smart_app_at_the_public_address(
        client: TestClient, service: ThighPainService, tmp_path: Any) -> None:
    cards = client.post("/cds-services/thigh-pain", json=hook_request()).json()["cards"]
    smart = {c["extension"]["thigh-pain-cds"]["cardType"]: link for c in cards
             for link in c.get("links", []) if link["type"] == "smart"}
    assert smart and set(smart) <= {"dvt", "checklist"}
    assert {link["url"] for link in smart.values()} == {"http://testserver/smart/launch.html"}
    # behind a proxy the configured public URL is used
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}",
                        public_url="https://cds.hospital.example/thigh")
    app = create_app(settings, service=service, store=FeedbackStore(settings.database_url),
                     as_of=AS_OF)
    with TestClient(app) as proxied:
        cards = proxied.post("/cds-services/thigh-pain", json=hook_request()).json()["cards"]
    urls = {link["url"] for c in cards for link in c.get("links", []) if link["type"] == "smart"}
    assert urls == {"https://cds.hospital.example/thigh/smart/launch.html"}


def test_in_process_calls_have_no_address_to_link(call: Any) -> None:
    cards = call(hook_request()).cards
    assert not [link for c in cards for link in c.links or () if link.type == "smart"]


def test_app_configuration_and_score_content(client: TestClient) -> None:
    config = client.get("/smart/config.json").json()
    assert config["clientId"] == "thigh-pain-wells"
    assert {"launch", "patient/QuestionnaireResponse.crs"} <= set(config["scope"].split())
    assert "wells-dvt-answers" in config["prefetch"]
    score = client.get("/smart/wells-dvt/score").json()
    assert [c["id"] for c in score["criteria"]][-1] == "alternative_diagnosis"
    assert {s["band"] for s in score["steps"]} >= {"likely", "unlikely", "indeterminate"}
    assert "**" not in str([s["detail_html"] for s in score["steps"]])
    reply = client.get("/smart/Questionnaire/wells-dvt")
    assert reply.headers["content-type"] == "application/fhir+json"
    assert client.get("/smart/launch.html").status_code == 200
    assert client.get("/smart/vendor/fhir-client.min.js").status_code == 200


def test_score_for_a_posted_chart(client: TestClient) -> None:
    request = hook_request(observation("leg_swelling", False, hours=2))
    chart = client.post("/smart/wells-dvt/score", json=request).json()
    assert chart["chart"]["entire_leg_swollen"]["truth"] == "not met"
    assert chart["chart"]["calf_swelling"]["truth"] == "unknown"
    assert chart["ddimer"]["state"] == "none"
    fetched = hook_request(fhirServer="http://127.0.0.1:9/fhir")
    assert client.post("/smart/wells-dvt/score", json=fetched).status_code == 400


def test_the_app_fills_every_placeholder_the_dvt_steps_use(content: Content) -> None:
    """app.js fills these five (as cds/cards.py does); a new one in rules/dvt.toml must be
    added there too, or the app would show it raw."""
    import re

    used = {name for step in content.dvt.steps
            for name in re.findall(r"\{(\w+)\}", step.summary + step.detail)}
    assert used <= {"score", "points", "unknown", "wells", "ddimer"}


def _smart_urls(cards: list[dict[str, Any]]) -> list[str]:
    return [link["url"] for c in cards for link in c.get("links", []) if link["type"] == "smart"]


def test_no_link_when_the_app_has_nothing_to_ask(client: TestClient) -> None:
    complete = hook_request(condition("leg_swelling", onset_days=1))
    complete["prefetch"]["wells-dvt-answers"] = searchset([answers(
        calf_swelling=True, active_cancer=False, paralysis=False, bedridden_or_surgery=False,
        deep_vein_tenderness=False, pitting_oedema=False, collateral_veins=False,
        previous_dvt=False, alternative_diagnosis=False)])
    assert _smart_urls(client.post("/cds-services/thigh-pain", json=complete).json()["cards"]) == []
    on_record = hook_request(condition("dvt", onset_days=3))
    cards = client.post("/cds-services/thigh-pain", json=on_record).json()["cards"]
    assert cards and _smart_urls(cards) == []
