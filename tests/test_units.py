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
        (5, "{score}", "1", 5),
        (30, "mm/hr", "mm/h", 30),
        (212, "IU/L", "U/L", 212),  # enzyme activity: laboratories' IU/L is the enzyme unit
    ],
)
def test_exact_conversions(value, unit, target, expected):
    assert convert(value, unit, target) == pytest.approx(expected)


def test_conversions_are_exact_at_the_cut_off():
    """500 ng/mL is 500 ug/L, not 500.0000000000001 (a D-dimer cut-off is compared with >=)."""
    assert convert(500, "ng/mL", "ug/L") == 500
    assert convert(0.5, "mg/L{FEU}", "ug/L") == 500


@pytest.mark.parametrize(("value", "unit", "valence", "expected"), [
    (4.1, "meq/L", 1, 4.1),  # potassium, sodium: monovalent
    (4.1, "mEq/L", 1, 4.1),  # the common spelling of the UCUM code meq/L
    (2.0, "meq/L", 2, 1.0),  # a divalent ion (magnesium, calcium): 2 mEq = 1 mmol
])
def test_equivalents_convert_by_valence(value, unit, valence, expected):
    assert convert(value, unit, "mmol/L", valence) == pytest.approx(expected)


def test_equivalents_without_a_valence_are_refused():
    with pytest.raises(UnitError):
        convert(4.1, "meq/L", "mmol/L")


@pytest.mark.parametrize(("unit", "target"), [("mmol/L", "mg/dL"), ("%", "/min"),
                                              (None, "ug/L"), ("furlongs", "ug/L")])
def test_inexact_or_unknown_conversions_are_refused(unit, target):
    with pytest.raises(UnitError):
        convert(1.0, unit, target)
