"""`cds replay` as a developer uses it: bundles, hook requests, folders, stdin, --json."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cds.cli import app
from tests.fhir import condition, hook_request, observation, patient

runner = CliRunner()


def _bundle(*resources) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_replay_bundle_prints_cards(tmp_path: Path) -> None:
    bundle = _bundle(patient(), condition("urinary_retention", onset_days=1))
    path = _write(tmp_path / "ces.json", bundle)
    result = runner.invoke(app, ["replay", str(path), "--as-of", "2026-11-24"])
    assert result.exit_code == 0, result.output
    assert "CRITICAL" in result.output
    assert "cauda equina" in result.output


def test_replay_json_is_a_valid_response(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.json", hook_request(observation("heart_rate", 120, "/min")))
    result = runner.invoke(app, ["replay", str(path), "--json", "--as-of", "2026-11-24"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["cards"]


def test_replay_fetch_path_matches_prefetch(tmp_path: Path) -> None:
    bundle = _bundle(patient(), condition("urinary_retention", onset_days=1),
                     observation("heart_rate", 120, "/min"))
    path = _write(tmp_path / "b.json", bundle)
    pre = runner.invoke(app, ["replay", str(path), "--json", "--as-of", "2026-11-24"])
    fetched = runner.invoke(app, ["replay", str(path), "--json", "--fetch",
                                  "--as-of", "2026-11-24"])
    assert pre.exit_code == 0 and fetched.exit_code == 0, fetched.output
    summaries = [c["summary"] for c in json.loads(pre.output)["cards"]]
    assert summaries == [c["summary"] for c in json.loads(fetched.output)["cards"]]


def test_replay_folder_with_a_broken_file_exits_non_zero(tmp_path: Path) -> None:
    _write(tmp_path / "good.json", _bundle(patient()))
    (tmp_path / "broken.json").write_text("{ nope")
    _write(tmp_path / "no-patient.json", _bundle(condition("sciatica")))
    result = runner.invoke(app, ["replay", str(tmp_path)])
    assert result.exit_code == 1
    assert "Replay summary" in result.output
    assert "not valid JSON" in result.output
    assert "no Patient" in result.output


def test_replay_stdin(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", "-", "--as-of", "2026-11-24"],
                           input=json.dumps(_bundle(patient())))
    assert result.exit_code == 0, result.output


def test_replay_missing_file_is_an_error() -> None:
    result = runner.invoke(app, ["replay", "does-not-exist.json"])
    assert result.exit_code == 2
