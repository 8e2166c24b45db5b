"""The Wells SMART app in a real browser, launched by a stand-in EHR through the SMART App
Launch 2.x EHR-launch flow; the answers it writes back change the next hook call's card."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from cds.bundle import resources_of
from cds.view.examples import load_scenario
from tests.browser.conftest import LiveService
from tests.fhir import AS_OF
from tests.smart_ehr import StandInEhr, running_ehr

SCENARIO = "wells-low-ddimer-negative"  # D-dimer negative, 3 leg signs absent, 7 unknown
ANSWERS_YES = {"calf_swelling", "previous_dvt"}


def _hook(live: LiveService, ehr: StandInEhr, patient_id: str) -> list[dict[str, Any]]:
    """A patient-view call as the EHR makes it: no prefetch, its FHIR server and a token."""
    request = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": ehr.fhir_base,
        "fhirAuthorization": ehr.token_for_service(patient_id),
        "context": {"userId": "Practitioner/ehr-user", "patientId": patient_id},
    }
    reply = requests.post(f"{live.url}/cds-services/thigh-pain", json=request, timeout=30)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["cards"])


def _wells_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in cards if "Wells" in c["summary"])


def test_smart_app_completes_the_wells_score(browser: Any, live: LiveService,
                                             artifacts: Path) -> None:
    from playwright.sync_api import expect

    bundle = load_scenario(SCENARIO)
    assert bundle is not None
    resources = resources_of(bundle)
    patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    with running_ehr(resources, "thigh-pain-wells", f"{live.url}/smart/") as ehr:
        before = _hook(live, ehr, patient_id)
        card = _wells_card(before)
        assert "incomplete" in card["summary"]  # the chart alone cannot finish the score
        smart = [link for c in before for link in c.get("links", []) if link["type"] == "smart"]
        assert smart and smart[0]["url"] == f"{live.url}/smart/launch.html"

        # the EHR launches the app from the card's link (browser clock at the evaluation date)
        context = browser.new_context(viewport={"width": 900, "height": 1000})
        context.clock.set_fixed_time(AS_OF)
        page = context.new_page()
        launch = urlencode({"iss": ehr.fhir_base, "launch": ehr.launch(patient_id)})
        page.goto(f"{smart[0]['url']}?{launch}")
        expect(page.locator("#ask")).to_be_visible(timeout=15000)
        assert ehr.events == ["authorize", "token"]  # PKCE S256, state and launch checked

        # what the chart already answers is shown, only the unknown criteria are asked
        known = page.locator("#known-list li")
        expect(known).to_have_count(3)
        for text in known.all_inner_texts():
            assert "No" in text and "recorded as absent" in text
        questions = page.locator("#questions fieldset")
        expect(questions).to_have_count(7)
        expect(page.locator("#score")).to_contain_text("incomplete")
        for i in range(questions.count()):
            fieldset = questions.nth(i)
            criterion = fieldset.get_attribute("data-criterion")
            fieldset.get_by_label("Yes" if criterion in ANSWERS_YES else "No").check()
        expect(page.locator("#score")).to_have_text("Wells score 2 (DVT likely)")
        expect(page.locator("#step")).to_contain_text("ultrasound")
        page.screenshot(path=str(artifacts / "smart-wells-answered.png"), full_page=True)

        page.get_by_role("button", name="Save answers to the record").click()
        expect(page.locator("#saved")).to_contain_text("QuestionnaireResponse/")
        page.screenshot(path=str(artifacts / "smart-wells-saved.png"), full_page=True)
        context.close()

        # the EHR holds a valid QuestionnaireResponse to the published Questionnaire
        assert len(ehr.created) == 1
        response = QuestionnaireResponse.model_validate(ehr.created[0])
        assert str(response.questionnaire).startswith("urn:thigh-pain-cds:questionnaire:wells-dvt")
        assert {i.linkId: i.answer[0].valueBoolean for i in response.item or []} == {
            c: c in ANSWERS_YES for c in ("active_cancer", "paralysis", "bedridden_or_surgery",
                                          "calf_swelling", "collateral_veins", "previous_dvt",
                                          "alternative_diagnosis")}

        # the next hook call reads the answers: the Wells score is complete
        after = _wells_card(_hook(live, ehr, patient_id))
        assert after["summary"].startswith("DVT likely (Wells 2)")
        assert "the clinician's answer" in after["detail"]
