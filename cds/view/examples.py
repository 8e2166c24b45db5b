"""The example scenarios the view lists: examples/bundles, shipped in the wheel.

Looked up like cards/: $CDS_EXAMPLES_DIR, the copy the wheel carries (cds/_examples, from
pyproject's force-include), or the source checkout's examples/. Each bundle is pinned to the
date in its Bundle.timestamp, and the view evaluates it as of that date.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str


def examples_dir() -> Path | None:
    override = os.environ.get("CDS_EXAMPLES_DIR")
    here = Path(__file__).resolve().parent.parent
    candidates = [Path(override)] if override else [here / "_examples", here.parent / "examples"]
    return next((c for c in candidates if (c / "bundles").is_dir()), None)


def scenarios() -> list[Scenario]:
    root = examples_dir()
    if root is None:
        return []
    out = []
    for path in sorted((root / "bundles").glob("*.json")):
        description = ""
        expected = root / "expected" / path.name
        if expected.exists():
            try:
                description = str(json.loads(expected.read_text("utf-8")).get("description", ""))
            except (ValueError, AttributeError):
                description = ""
        out.append(Scenario(path.stem, description))
    return out


def load_scenario(name: str) -> dict[str, Any] | None:
    """The scenario's bundle, or None for a name that is not one of them."""
    root = examples_dir()
    if root is None or not NAME.match(name):
        return None
    path = root / "bundles" / f"{name}.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text("utf-8"))
    return value if isinstance(value, dict) else None


def pinned_date(bundle: dict[str, Any]) -> datetime | None:
    stamp = bundle.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
