"""UCUM unit conversion for the handful of quantities the rules compare.

Only conversions that are exact by definition are done; anything else is reported as an
unusable value rather than guessed. Annotations such as `{FEU}` are meaningful (FEU and DDU
D-dimer values differ about twofold), so they are kept apart by concept, not by unit.
"""

from __future__ import annotations

import re

# factor to a base unit, grouped by dimension
_FACTORS: dict[str, tuple[str, float]] = {
    # mass concentration, base g/L
    "g/L": ("mass/volume", 1.0),
    "g/dL": ("mass/volume", 10.0),
    "mg/dL": ("mass/volume", 1e-2),
    "mg/L": ("mass/volume", 1e-3),
    "ug/mL": ("mass/volume", 1e-3),
    "ug/L": ("mass/volume", 1e-6),
    "ng/mL": ("mass/volume", 1e-6),
    "ng/L": ("mass/volume", 1e-9),
    # substance concentration, base mol/L
    "mol/L": ("substance/volume", 1.0),
    "mmol/L": ("substance/volume", 1e-3),
    "umol/L": ("substance/volume", 1e-6),
    # rates
    "/min": ("rate", 1.0),
    "{beats}/min": ("rate", 1.0),
    "{breaths}/min": ("rate", 1.0),
    "/h": ("per-hour", 1.0),
    "mm/h": ("length/time", 1.0),
    "mm/[hr]": ("length/time", 1.0),
    # number concentration, base /L
    "10*3/uL": ("number/volume", 1e9),
    "10*9/L": ("number/volume", 1e9),
    "/uL": ("number/volume", 1e6),
    # others
    "%": ("fraction", 1.0),
    "{score}": ("score", 1.0),
    "{Score}": ("score", 1.0),
    "1": ("score", 1.0),
    "U/L": ("catalytic/volume", 1.0),
    "[IU]/L": ("catalytic/volume", 1.0),
    "Cel": ("temperature", 1.0),
    "[degF]": ("temperature", 1.0),
}
_ANNOTATION = re.compile(r"\{[^}]*\}")
_ALIASES = {"°C": "Cel", "C": "Cel", "degC": "Cel", "°F": "[degF]", "F": "[degF]",
            "beats/min": "/min", "bpm": "/min", "breaths/min": "/min", "mcg/L": "ug/L",
            "µg/L": "ug/L", "μg/L": "ug/L", "mcg/mL": "ug/mL", "µg/mL": "ug/mL",
            "μg/mL": "ug/mL", "K/uL": "10*3/uL", "10^3/uL": "10*3/uL", "mm/hr": "mm/h",
            "u/L": "U/L", "IU/L": "U/L"}


def _clean(unit: str) -> str:
    unit = unit.strip()
    unit = _ALIASES.get(unit, unit)
    if unit in _FACTORS:
        return unit
    stripped = _ANNOTATION.sub("", unit).strip() or unit
    return _ALIASES.get(stripped, stripped)


class UnitError(ValueError):
    """A value whose unit cannot be converted exactly to the unit a rule expects."""


def convert(value: float, unit: str | None, target: str) -> float:
    """Convert `value` from `unit` to `target` (both UCUM); raise UnitError if not exact."""
    target_clean = _clean(target)
    if unit is None or not unit.strip():
        raise UnitError(f"no unit given; expected {target}")
    source_clean = _clean(unit)
    if source_clean == target_clean:
        return value
    if source_clean not in _FACTORS or target_clean not in _FACTORS:
        raise UnitError(f"cannot convert {unit!r} to {target!r}")
    dim_from, f_from = _FACTORS[source_clean]
    dim_to, f_to = _FACTORS[target_clean]
    if dim_from != dim_to:
        raise UnitError(f"{unit!r} is not a {dim_to} unit like {target!r}")
    if dim_from == "temperature":
        celsius = value if source_clean == "Cel" else (value - 32) * 5 / 9
        return celsius if target_clean == "Cel" else celsius * 9 / 5 + 32
    return value * f_from / f_to
