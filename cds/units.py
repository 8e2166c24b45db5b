"""UCUM unit conversion with a maintained UCUM library (ucumvert, on pint).

Values arrive in whatever UCUM unit the laboratory used; each rule compares them in the
concept's canonical unit. The library parses and converts; this module only
- maps a few spellings EHRs send in `Quantity.unit` that are not UCUM codes ("mEq/L", "°C"),
- drops annotations such as `{FEU}` (UCUM gives them no meaning; FEU and DDU D-dimers are
  kept apart by their LOINC codes, not by unit),
- converts equivalents to moles by the ion's valence (UCUM defines eq as mol, which holds
  only for monovalent ions such as sodium and potassium), and
- caches each (from, to) pair as a linear map, so the request path does one multiply.
A unit the library cannot convert raises UnitError, and the reader reports the value as
skipped rather than guessing. The registry takes seconds to build: `warm_up()` builds it in
a background thread when the service starts.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

_ANNOTATION = re.compile(r"\{[^}]*\}")
_EQUIVALENTS = re.compile(r"(^|[^a-zA-Z])[munp]?eq($|[^a-zA-Z])")
# spellings seen in Quantity.unit that are not UCUM codes, to the UCUM code they mean
_SPELLINGS = {
    "°C": "Cel", "C": "Cel", "degC": "Cel", "°F": "[degF]", "F": "[degF]", "degF": "[degF]",
    "beats/min": "/min", "bpm": "/min", "breaths/min": "/min",
    "mcg/L": "ug/L", "µg/L": "ug/L", "μg/L": "ug/L", "mcg/mL": "ug/mL", "µg/mL": "ug/mL",
    "μg/mL": "ug/mL", "K/uL": "10*3/uL", "10^3/uL": "10*3/uL", "10^9/L": "10*9/L",
    "mm/hr": "mm/h", "mm/[hr]": "mm/h", "mEq/L": "meq/L", "MEQ/L": "meq/L", "mEq/l": "meq/L",
    "mmol/l": "mmol/L", "u/L": "U/L",
    # enzyme activity: laboratories write IU/L for the enzyme unit (umol/min per litre);
    # UCUM's [IU] is the arbitrary WHO unit, which would not convert
    "IU/L": "U/L", "[IU]/L": "U/L",
}

_lock = threading.Lock()
_registry: Any = None


class UnitError(ValueError):
    """A value whose unit cannot be converted exactly to the unit a rule expects."""


def _ucum() -> Any:
    """The UCUM registry, built once per process (thread-safe)."""
    global _registry
    with _lock:
        if _registry is None:
            from ucumvert import PintUcumRegistry

            _registry = PintUcumRegistry()
        return _registry


_warming = threading.Event()


def warm_up() -> None:
    """Build the registry in the background (once), so that no hook call waits for it."""
    if _registry is None and not _warming.is_set():
        _warming.set()
        threading.Thread(target=_ucum, name="ucum-warm-up", daemon=True).start()


def loaded() -> bool:
    """Is the registry built? (Until it is, a conversion waits for it.)"""
    return _registry is not None


@lru_cache(maxsize=1024)  # a chart repeats a few units: each is cleaned once
def clean(unit: str) -> str:
    """The UCUM code a unit string means, annotations dropped ('{score}' is '1')."""
    unit = unit.strip()
    unit = _SPELLINGS.get(unit, unit)
    stripped = _ANNOTATION.sub("", unit).strip()
    if not stripped or stripped == "/":
        return "1"
    return _SPELLINGS.get(stripped, stripped)


@lru_cache(maxsize=512)
def _linear(source: str, target: str) -> tuple[float, float]:
    """(scale, offset) with target = scale * source + offset; UnitError if not convertible."""
    registry = _ucum()
    try:
        from_units = registry.from_ucum(source).units
        to_units = registry.from_ucum(target).units
        zero = registry.Quantity(0.0, from_units).to(to_units).magnitude
        one = registry.Quantity(1.0, from_units).to(to_units).magnitude
    except Exception as exc:  # ucumvert/lark parse errors, pint dimensionality errors
        kind = type(exc).__name__
        reason = ("not a UCUM unit" if "Ucum" in kind or "Unexpected" in kind
                  else "a different kind of quantity" if "Dimensionality" in kind
                  else kind)
        raise UnitError(f"cannot convert {source!r} to {target!r} ({reason})") from exc
    return float(one - zero), float(zero)


def convert(value: float, unit: str | None, target: str, valence: int | None = None) -> float:
    """Convert `value` from `unit` to `target` (both UCUM); raise UnitError if not possible.

    `valence` is the ion's charge, needed to read equivalents (mEq/L) as moles."""
    if unit == target and unit.strip():  # already in the unit asked for (most results)
        return value
    if unit is None or not unit.strip():
        raise UnitError(f"no unit given; expected {target}")
    source, goal = clean(unit), clean(target)
    if source == goal:
        return value
    if _EQUIVALENTS.search(source) and not _EQUIVALENTS.search(goal):
        if valence is None:
            raise UnitError(f"cannot convert {unit!r} to {target!r} without the ion's valence")
        value = value / valence
    scale, offset = _linear(source, goal)
    # 12 significant digits: 500 ng/mL is 500 ug/L exactly, not 500.0000000000001
    return float(f"{value * scale + offset:.12g}")
