"""The card view in a real browser: what a clinician or an EHR team sees at /view."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cds.bundle import hook_request_from_bundle
from cds.hooks import HookRequest
from cds.view.examples import load_scenario, pinned_date, scenarios
from tests.browser.conftest import LiveService


def _expected_cards(live: LiveService, name: str) -> list[Any]:
    bundle = load_scenario(name)
    assert bundle is not None
    request = HookRequest.model_validate(hook_request_from_bundle(bundle, live.service.content))
    response, _ = live.service.call("thigh-pain", request, as_of=pinned_date(bundle))
    return response.cards


def _counts(live: LiveService) -> dict[str, tuple[int, int]]:
    live.store.flush()  # issued cards (the report's card types) are written in the background
    return {str(r["card_type"]): (int(str(r["accepted"])), int(str(r["overridden"])))
            for r in live.store.report()}


def test_view_lists_scenarios_and_shows_a_scenarios_cards(page: Any, live: LiveService,
                                                          artifacts: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live.url}/view")
    expect(page.locator(".scenarios a")).to_have_count(len(scenarios()))
    page.get_by_role("link", name="dvt-likely", exact=True).click()
    expect(page).to_have_url(f"{live.url}/view?example=dvt-likely")

    expected = _expected_cards(live, "dvt-likely")
    cards = page.locator("article.card")
    expect(cards).to_have_count(len(expected))
    assert page.locator(".card__summary").all_inner_texts() == [c.summary for c in expected]
    assert [cards.nth(i).get_attribute("data-indicator") for i in range(len(expected))] == [
        c.indicator for c in expected]
    # the patient summary says who this is
    expect(page.locator(".patient__name")).not_to_be_empty()
    expect(page.locator(".patient__facts")).to_contain_text("evaluated as of 2026-11-24")
    # Markdown is rendered, not shown raw
    for text in page.locator(".card .markdown").all_inner_texts():
        assert "**" not in text
    assert page.locator(".card .markdown strong").count() > 0
    # the source is a link to the guideline
    source = cards.first.locator(".card__source a")
    assert source.get_attribute("href") == str(expected[0].source.url)
    page.screenshot(path=str(artifacts / "view-dvt-likely.png"), full_page=True)


def test_accept_shows_the_resource_and_dismiss_sends_a_reason(page: Any, live: LiveService,
                                                              artifacts: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live.url}/view?example=dvt-likely")
    before = _counts(live)

    card = page.locator("article.card", has=page.locator(".button--accept")).first
    card_type = card.get_attribute("data-card-type")
    accept = card.locator(".button--accept").first
    with page.expect_request("**/cds-services/thigh-pain/feedback") as sent:
        accept.click()
    body = sent.value.post_data_json["feedback"][0]
    assert body["outcome"] == "accepted"
    assert body["acceptedSuggestions"] == [{"id": accept.get_attribute("data-suggestion-uuid")}]
    resource = card.locator(".suggestion__resource").first
    expect(resource).to_be_visible()
    expect(resource).to_contain_text('"resourceType": "ServiceRequest"')
    expect(resource).to_contain_text('"status": "draft"')
    expect(card.locator(".card__status")).to_contain_text("Accepted")

    # dismiss another card with the keyboard only: reason, comment, Enter
    other = page.locator("article.card").last
    other_type = other.get_attribute("data-card-type")
    reason = other.locator("select[name=reason]")
    reason.focus()
    reason.select_option(label="Not applicable to this patient")
    page.keyboard.press("Tab")
    page.keyboard.type("examined: calves soft, not swollen")
    with page.expect_request("**/cds-services/thigh-pain/feedback") as sent:
        page.keyboard.press("Enter")
    body = sent.value.post_data_json["feedback"][0]
    assert body["outcome"] == "overridden"
    assert body["overrideReason"]["reason"]["code"] == "not-applicable"
    assert body["overrideReason"]["userComment"] == "examined: calves soft, not swollen"
    expect(other.locator(".card__status")).to_contain_text("Dismissed")
    expect(other).to_have_class(re.compile(r"\bis-dismissed\b"))
    page.screenshot(path=str(artifacts / "view-feedback.png"), full_page=True)

    # both are in the service's feedback store, counted against the right card types
    after = _counts(live)
    assert after[card_type or ""][0] == before.get(card_type or "", (0, 0))[0] + 1
    assert after[other_type or ""][1] == before.get(other_type or "", (0, 0))[1] + 1


def test_pasted_request_and_bad_input(page: Any, live: LiveService) -> None:
    from playwright.sync_api import expect

    root = Path(__file__).resolve().parents[2] / "examples" / "requests" / "cauda-equina.json"
    page.goto(f"{live.url}/view")
    page.get_by_label("Paste a FHIR Bundle or a CDS Hooks request (JSON)").fill(
        root.read_text("utf-8"))
    page.get_by_label("Evaluate as of (optional date)").fill("2026-11-24")
    page.get_by_role("button", name="Show cards").click()
    expect(page.locator("article.card").first).to_have_attribute("data-indicator", "critical")

    page.goto(f"{live.url}/view")
    page.get_by_label("Paste a FHIR Bundle or a CDS Hooks request (JSON)").fill('{"resourceType"')
    page.get_by_role("button", name="Show cards").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid JSON")
