"""cards/ holds together: every concept, source and order a rule names exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from cds.content import cards_dir, load_content


def test_shipped_content_loads(content):
    assert content.dvt.score.id == "wells_dvt"
    assert {f.id for f in content.red_flags.families} >= {
        "cauda_equina", "pulmonary_embolism", "infection", "fracture", "cancer"}
    groups = {c.group for c in content.differential.causes}
    assert groups == {"musculoskeletal", "neurological", "vascular"}


def test_every_rule_names_a_source(content):
    for family in content.red_flags.families:
        assert family.source in content.sources
        for flag in family.flags:
            assert flag.source in content.sources, flag.id
    for cause in content.differential.causes:
        for c in [*cause.supports, *cause.against]:
            assert c.source in content.sources, (cause.id, c.id)


def test_a_typo_in_a_concept_id_stops_loading(tmp_path: Path):
    copy = tmp_path / "cards"
    shutil.copytree(cards_dir(), copy)
    rules = copy / "rules" / "red-flags.toml"
    rules.write_text(rules.read_text().replace('"urinary_retention"', '"urinary_retension"', 1))
    with pytest.raises(ValidationError, match="unknown concept 'urinary_retension'"):
        load_content(copy)
