"""The scenario library: each bundle replays to the cards a person reviewed and accepted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import simple_icd_10_cm as icd
from typer.testing import CliRunner

from cds.bundle import hook_request_from_bundle
from cds.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
import build_examples  # noqa: E402

runner = CliRunner()
SCENARIOS = sorted(build_examples.SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_gives_the_reviewed_cards(scenario):
    expected = json.loads((EXAMPLES / "expected" / f"{scenario}.json").read_text())
    assert build_examples.observed(scenario) == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_committed_files_match_the_scenario_table(scenario, content):
    bundle = build_examples.SCENARIOS[scenario][1]().bundle(scenario)
    assert json.loads((EXAMPLES / "bundles" / f"{scenario}.json").read_text()) == bundle
    request = json.loads((EXAMPLES / "requests" / f"{scenario}.json").read_text())
    rebuilt = hook_request_from_bundle(bundle, content)
    rebuilt["hookInstance"] = request["hookInstance"]
    assert request == rebuilt


def _codings(node):
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield node
        for value in node.values():
            yield from _codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _codings(value)


def test_example_icd10cm_codes_are_real():
    for path in (EXAMPLES / "bundles").glob("*.json"):
        for c in _codings(json.loads(path.read_text())):
            if c["system"].endswith("icd-10-cm"):
                assert icd.is_valid_item(c["code"]), (path.name, c["code"])
                assert icd.get_description(c["code"]) == c["display"], (path.name, c)


def test_replaying_the_whole_library_works_and_malformed_inputs_fail_clearly():
    result = runner.invoke(app, ["replay", str(EXAMPLES / "bundles"), "--as-of", "2026-11-24"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["replay", str(EXAMPLES / "malformed")])
    assert bad.exit_code == 1
    for message in ("no Patient", "not valid JSON", "neither a FHIR Bundle"):
        assert message in bad.output


def test_invalid_resources_are_skipped_and_reported():
    path = EXAMPLES / "malformed" / "invalid-resources.json"
    result = runner.invoke(app, ["replay", str(path), "--as-of", "2026-11-24"])
    assert result.exit_code == 0, result.output
    assert "skipped: Observation/bad-value: invalid FHIR" in result.output
    assert "skipped: Condition/bad-date: invalid FHIR" in result.output
    assert "heart rate over 100" in result.output


def test_synthea_patients_replay_and_say_what_was_not_used():
    result = runner.invoke(app, ["replay", str(EXAMPLES / "synthea")])
    assert result.exit_code == 0, result.output
    assert "not requested by the service's prefetch" in result.output
    assert "Replay summary" in result.output


def test_large_chart_replays(tmp_path):
    path = tmp_path / "large.json"
    path.write_text(json.dumps(build_examples.large_chart(6000).bundle("large")))
    result = runner.invoke(app, ["replay", str(path), "--json", "--as-of", "2026-11-24T09:30"])
    assert result.exit_code == 0, result.output
    summaries = [c["summary"] for c in json.loads(result.stdout)[0]["response"]["cards"]]
    assert any("heart rate over 100" in s for s in summaries)
