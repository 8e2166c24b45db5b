"""The request bodies the benchmark sends: large charts built by examples/build_examples.py
and the example library, so that the benchmark and the tests share their fixtures."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import orjson

from cds.bundle import hook_request_from_bundle
from cds.content import default_content

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLES = REPOSITORY / "examples"
HOOK_INSTANCE = "00000000-0000-4000-8000-000000000000"


class MissingExamples(RuntimeError):
    """The benchmark runs from a clone: it needs examples/ next to cds/."""


@functools.cache
def _builder() -> Any:
    if not (EXAMPLES / "build_examples.py").exists():
        raise MissingExamples(f"no examples/build_examples.py under {REPOSITORY}: "
                              "run the benchmark from a clone of the repository")
    sys.path.insert(0, str(EXAMPLES))
    import build_examples  # type: ignore[import-not-found]

    return build_examples


def as_of() -> Any:
    """The date every example is pinned to."""
    return _builder().AS_OF


def chart_request(observations: int) -> bytes:
    """A patient-view request for a chart with years of results (`--large N`)."""
    bundle = _builder().large_chart(observations).bundle("large-chart")
    request = hook_request_from_bundle(bundle, default_content())
    request["hookInstance"] = HOOK_INSTANCE
    return orjson.dumps(request)


def example_request(scenario: str) -> bytes:
    request = json.loads((EXAMPLES / "requests" / f"{scenario}.json").read_text())
    request["hookInstance"] = HOOK_INSTANCE
    return orjson.dumps(request)


def named_request(chart: str) -> bytes:
    """A chart of N Observations ("100") or an example scenario ("dvt-likely"), as the
    benchmark commands take them on their command lines."""
    return chart_request(int(chart)) if chart.isdigit() else example_request(chart)


def library() -> list[tuple[str, bytes]]:
    """Every example bundle and Synthea patient, as the request an EHR would send."""
    content = default_content()
    out = []
    for folder in ("bundles", "synthea"):
        for path in sorted((EXAMPLES / folder).glob("*.json")):
            request = hook_request_from_bundle(json.loads(path.read_text()), content)
            name = path.stem if folder == "bundles" else f"synthea/{path.stem[:20]}"
            out.append((name, orjson.dumps(request)))
    return out
