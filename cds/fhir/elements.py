"""Typed reads of single elements from raw FHIR R4 JSON (dicts straight from the decoder).

The request path reads only the elements the rules use, so it checks each of those the way
FHIR defines its datatype (https://hl7.org/fhir/R4/datatypes.html) instead of validating whole
resources: a value of the wrong type or form raises `Invalid`, which the record reader turns
into "skipped and reported". Nothing here recurses into what it does not read, so deeply
nested extensions or unrelated elements cost nothing and cannot raise.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, NamedTuple

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_DATE = re.compile(_YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?")
_CODE = re.compile(r"[^\s]+( [^\s]+)*")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_id_match = _ID.fullmatch  # (every resource read checks its id)
_INT32 = 2**31
_EXACT = 2**53  # integers a float holds exactly (decimal() reads any other one too)


class Invalid(ValueError):
    """An element the rules read breaks its FHIR datatype; `str()` says where and how."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


class Coding(NamedTuple):
    system: str | None
    code: str | None
    display: str | None


class Codeable(NamedTuple):
    """A CodeableConcept (tuples: thousands are read per chart, so they must be cheap)."""

    codings: tuple[Coding, ...]
    text: str | None

    def codes(self) -> set[str]:
        return {c.code for c in self.codings if c.code}

    @property
    def first_code(self) -> str | None:
        return self.codings[0].code if self.codings else None


class Quantity(NamedTuple):
    value: float | None
    unit: str | None  # the code when there is one (UCUM), else the human unit


# a Quantity made without the Python frame of a NamedTuple's __new__ (one per value read)
_new_quantity = partial(tuple.__new__, Quantity)


# ---------------------------------------------------------------- primitives


def string(raw: dict[str, Any], key: str, path: str = "") -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise Invalid(path + key, "not a non-empty string")
    return value


_VALID_CODES: set[str] = set()  # codes repeat thousands of times in a chart: check each once


def is_code(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if value in _VALID_CODES:
        return True
    if not _CODE.fullmatch(value):
        return False
    if len(_VALID_CODES) > 50_000:  # they come from the caller: stay bounded
        _VALID_CODES.clear()
    _VALID_CODES.add(value)
    return True


def code(raw: dict[str, Any], key: str, path: str = "") -> str | None:
    value = raw.get(key)
    if value is None or (type(value) is str and value in _VALID_CODES):  # seen before
        return value
    if not is_code(value):
        raise Invalid(path + key, "not a FHIR code")
    return value


def fhir_id(raw: dict[str, Any], key: str = "id", path: str = "") -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _id_match(value):
        raise Invalid(path + key, "not a FHIR id")
    return value


def boolean(raw: dict[str, Any], key: str, path: str = "") -> bool | None:
    value = raw.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise Invalid(path + key, "not true or false")


def integer(raw: dict[str, Any], key: str, path: str = "") -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -_INT32 <= value < _INT32:
        raise Invalid(path + key, "not a 32-bit integer")
    return value


def decimal(raw: dict[str, Any], key: str, path: str = "") -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(path + key, "not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise Invalid(path + key, "not a finite number")
    return number


def date_only(raw: dict[str, Any], key: str, path: str = "") -> date | None:
    """A FHIR date; partial dates (a year, a month) give None: they name no day."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Invalid(path + key, "not a FHIR date")
    if len(value) < 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(path + key, "no such day") from None


def parse_date_time(value: str) -> datetime | None:
    """A FHIR dateTime or instant string as an aware datetime (partial dates at their
    start), or None when it is not one."""
    if len(value) <= 10:  # 2019, 2019-04, 2019-04-12
        if not _DATE.fullmatch(value):
            return None
        year, month, day = [*value.split("-"), "1", "1"][:3]
        try:
            return datetime(int(year), int(month), int(day), tzinfo=UTC)
        except ValueError:
            return None
    # a full date and time: check the shape FHIR requires (seconds, a time zone, at most
    # nine fraction digits); fromisoformat checks the digits, the calendar and the clock.
    # The separators (the characters at 4, 7, 10, 13 and 16) are compared in one slice.
    if len(value) < 20 or value[4:17:3] != "--T::" or not value.isascii():
        return None
    if value[-1] == "Z":
        zone = 1
    elif value[-6] in "+-" and value[-3] == ":":
        zone = 6
    else:
        return None
    fraction = value[19:-zone]
    if fraction and not (fraction[0] == "." and 2 <= len(fraction) <= 10
                         and fraction[1:].isdigit()):
        return None
    if value[17:19] == "60":  # a leap second: Python has none
        value = value[:17] + "59" + value[19:]
    try:
        moment = datetime.fromisoformat(value)  # Python 3.11 reads Z and 1-9 fraction digits
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


_from_iso = datetime.fromisoformat


def date_time(raw: dict[str, Any], key: str, path: str = "") -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    # the usual form, 2019-04-12T10:30:00Z (every result of a chart), read in one step
    if type(value) is str and len(value) == 20 and value[4:20:3] == "--T::Z" and value.isascii():
        try:
            return _from_iso(value)
        except ValueError:  # a leap second, or no such day: the full check below
            pass
    moment = parse_date_time(value) if isinstance(value, str) else None
    if moment is None:
        raise Invalid(path + key, "not a FHIR dateTime (a date, or a date and time with seconds "
                                  "and a time zone)")
    return moment


# ---------------------------------------------------------------- complex types


def element(raw: dict[str, Any], key: str, path: str = "") -> dict[str, Any] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(path + key, "not a JSON object")
    return value


def elements(raw: dict[str, Any], key: str, path: str = "") -> list[dict[str, Any]]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid(path + key, "not a list of JSON objects")
    return value


def codeable(raw: dict[str, Any], key: str, path: str = "") -> Codeable | None:
    value = element(raw, key, path)
    return None if value is None else concept(value, f"{path}{key}.")


def checked_codeable(raw: dict[str, Any], key: str, path: str = "") -> dict[str, Any] | None:
    """The CodeableConcept at `key` as sent, checked as `codeable` checks it, for a reader
    that wants only its text, a display or its first code: nothing is built. A valid value's
    `coding` is absent or a list of JSON objects, and its `text` absent or a string."""
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is not dict or not _usual(value):
        codeable(raw, key, path)  # says what is wrong (a valid value of another shape passes)
    return value  # type: ignore[no-any-return]


def checked_first_code(raw: dict[str, Any], key: str, path: str = "") -> str | None:
    """The code of the first coding of the checked CodeableConcept at `key`, as
    `Codeable.first_code` reads it (a Condition's statuses)."""
    value = checked_codeable(raw, key, path)
    codings = value.get("coding") if value is not None else None
    return codings[0].get("code") if codings else None


def _usual(value: dict[str, Any]) -> bool:
    """Is this CodeableConcept of the usual, valid shape (a list of codings whose system,
    code and display are non-empty strings, codes already seen valid)? Checked without
    building error paths; anything else goes to the full check in `concept`, which reads a
    valid value the same way or says what is wrong with it."""
    text = value.get("text")
    if text is not None and (type(text) is not str or not text):
        return False
    codings = value.get("coding")
    if codings is None:
        return True
    if type(codings) is not list:
        return False
    for item in codings:
        if type(item) is not dict:
            return False
        system, code_, display = item.get("system"), item.get("code"), item.get("display")
        if ((system is not None and (type(system) is not str or not system))
                or (code_ is not None and (type(code_) is not str or code_ not in _VALID_CODES))
                or (display is not None and (type(display) is not str or not display))):
            return False
    return True


def _usual_concept(value: dict[str, Any]) -> Codeable | None:
    """`concept` of a value of the usual shape (`_usual`), else None."""
    if not _usual(value):
        return None
    codings = value.get("coding") or ()
    return Codeable(tuple([Coding(c.get("system"), c.get("code"), c.get("display"))
                           for c in codings]), value.get("text"))


def concept(value: dict[str, Any], where: str) -> Codeable:
    """A CodeableConcept already known to be a JSON object (e.g. an item of a list)."""
    usual = _usual_concept(value)
    if usual is not None:
        return usual
    codings = value.get("coding")
    out: list[Coding] = []
    if codings is not None:
        if not isinstance(codings, list):
            raise Invalid(where + "coding", "not a list of JSON objects")
        for i, item in enumerate(codings):
            if not isinstance(item, dict):
                raise Invalid(f"{where}coding[{i}]", "not a JSON object")
            system, code_, display = item.get("system"), item.get("code"), item.get("display")
            if system is not None and (not isinstance(system, str) or not system):
                raise Invalid(f"{where}coding[{i}].system", "not a non-empty string")
            if code_ is not None and not is_code(code_):
                raise Invalid(f"{where}coding[{i}].code", "not a FHIR code")
            if display is not None and (not isinstance(display, str) or not display):
                raise Invalid(f"{where}coding[{i}].display", "not a non-empty string")
            out.append(Coding(system, code_, display))
    return Codeable(tuple(out), string(value, "text", where))


def quantity(raw: dict[str, Any], key: str, path: str = "") -> Quantity | None:
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is dict:  # the usual shape, read in one step (anything else: below)
        number, unit, human = value.get("value"), value.get("code"), value.get("unit")
        if ((type(number) is float and math.isfinite(number)) or (
                type(number) is int and -_EXACT < number < _EXACT)) and (
                unit is None or (type(unit) is str and unit in _VALID_CODES)) and (
                human is None or (type(human) is str and human)):
            return _new_quantity((float(number), unit or human))
    value = element(raw, key, path) or {}
    where = f"{path}{key}."
    unit = code(value, "code", where)
    human = string(value, "unit", where)
    return Quantity(decimal(value, "value", where), unit or human)


def reference(raw: dict[str, Any], key: str, path: str = "") -> str | None:
    value = raw.get(key)
    if type(value) is dict:  # the usual shape, read in one step (anything else: below)
        target = value.get("reference")
        if target is None or (type(target) is str and target):
            return target
    value = element(raw, key, path)
    return None if value is None else string(value, "reference", f"{path}{key}.")


def period_start(raw: dict[str, Any], key: str, path: str = "") -> datetime | None:
    value = element(raw, key, path)
    return None if value is None else date_time(value, "start", f"{path}{key}.")
