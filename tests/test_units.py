"""UCUM conversions the rules rely on: exact ones only, the rest refused."""

from __future__ import annotations

import pytest

from cds.units import UnitError, convert


@pytest.mark.parametrize(
    ("value", "unit", "target", "expected"),
    [
        (0.5, "ug/mL", "ug/L", 500),
        (500, "ng/mL", "ug/L", 500),
        (0.5, "mg/L{FEU}", "ug/L", 500),
        (250, "ng/mL{DDU}", "ug/L", 250),
        (98.6, "[degF]", "Cel", 37.0),
        (37, "Cel", "Cel", 37),
        (2.0, "mg/dL", "mg/L", 20),
        (88, "/min", "/min", 88),
        (88, "{beats}/min", "/min", 88),
        (7.1, "10*3/uL", "10*9/L", 7.1),
    ],
)
def test_exact_conversions(value, unit, target, expected):
    assert convert(value, unit, target) == pytest.approx(expected)


@pytest.mark.parametrize(("unit", "target"), [("mmol/L", "mg/dL"), ("%", "/min"),
                                              (None, "ug/L"), ("furlongs", "ug/L")])
def test_inexact_or_unknown_conversions_are_refused(unit, target):
    with pytest.raises(UnitError):
        convert(1.0, unit, target)
