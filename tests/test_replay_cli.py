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
    [body] = json.loads(result.stdout)
    assert body["ok"] and body["error"] is None and body["response"]["cards"]


def test_replay_json_has_one_shape_for_one_or_many_good_or_bad(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.json", hook_request(condition("urinary_retention")))
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    for args in ([str(good)], [str(bad)], [str(tmp_path)]):
        result = runner.invoke(app, ["replay", *args, "--json", "--as-of", "2026-11-24"])
        items = json.loads(result.stdout)
        assert isinstance(items, list) and items
        for item in items:
            assert set(item) == {"input", "ok", "error", "response"}
    assert "not valid JSON" in result.stderr


def test_replay_shows_the_whole_summary_and_a_readable_table_at_80_columns(
        tmp_path: Path) -> None:
    _write(tmp_path / "a-chart-with-a-rather-long-file-name.json",
           _bundle(patient(), condition("urinary_retention", onset_days=1),
                   condition("sciatica", onset_days=2)))
    (tmp_path / "broken.json").write_text("{ nope")
    result = runner.invoke(app, ["replay", str(tmp_path), "--as-of", "2026-11-24"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    flat = " ".join(line.strip(" │") for line in lines)
    assert "refer as an emergency for assessment and MRI" in flat  # the summary's end
    table = lines[lines.index(next(x for x in lines if "Replay summary" in x)):]
    assert any("broken.json" in x and "error" in x for x in table)
    assert "not valid JSON" in result.stderr and "not valid JSON" not in result.stdout


def test_replay_fetch_path_matches_prefetch(tmp_path: Path) -> None:
    bundle = _bundle(patient(), condition("urinary_retention", onset_days=1),
                     observation("heart_rate", 120, "/min"))
    path = _write(tmp_path / "b.json", bundle)
    pre = runner.invoke(app, ["replay", str(path), "--json", "--as-of", "2026-11-24"])
    fetched = runner.invoke(app, ["replay", str(path), "--json", "--fetch",
                                  "--as-of", "2026-11-24"])
    assert pre.exit_code == 0 and fetched.exit_code == 0, fetched.output
    summaries = [c["summary"] for c in json.loads(pre.stdout)[0]["response"]["cards"]]
    assert summaries == [c["summary"] for c in json.loads(fetched.stdout)[0]["response"][
        "cards"]]


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


def test_report_counts_cards_and_words_within_budget() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    result = runner.invoke(app, ["report", str(examples / "bundles"), str(examples / "synthea"),
                                 "--as-of", "2026-11-24"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    words = " ".join(result.stdout.split())  # as read, whatever width the console wrapped at
    assert "over budget: 0" in words
    assert "7 got no cards" in words  # 5 quiet examples and both Synthea charts


def test_report_can_open_each_historical_chart_at_its_last_visit() -> None:
    synthea = Path(__file__).resolve().parent.parent / "examples" / "synthea"
    result = runner.invoke(app, ["report", str(synthea), "--as-of", "last-visit"],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "2 charts: 2 got no cards" in result.stdout  # nothing about thigh or back pain
