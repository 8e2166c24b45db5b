"""Fuzz FHIR parsing: whatever JSON an EHR sends, building the record never raises; what is
invalid is skipped and reported."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds.content import default_content
from cds.reasoning.assessment import assess
from cds.record import RecordBuilder
from cds.terminology import Terminology
from tests.fhir import AS_OF, PATIENT_ID, condition, observation

CONTENT = default_content()
BUILDER = RecordBuilder(CONTENT, Terminology.from_content(CONTENT))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
FIELDS = ["status", "subject", "code", "clinicalStatus", "verificationStatus", "onsetDateTime",
          "effectiveDateTime", "valueQuantity", "valueBoolean", "valueInteger",
          "referenceRange", "interpretation", "id", "resourceType", "recordedDate"]


@st.composite
def mutated_resources(draw: Any) -> dict[str, Any]:
    base = draw(st.sampled_from([
        condition("urinary_retention"), condition("dvt", clinical="resolved"),
        observation("heart_rate", 120, "/min"), observation("ddimer_feu", 0.9, "ug/mL"),
        observation("leg_swelling", True),
    ]))
    resource = dict(base)
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        if draw(st.booleans()):
            resource[field] = draw(json_values)
        else:
            resource.pop(field, None)
    return resource


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_resources(), max_size=6))
def test_any_mutation_is_parsed_or_skipped_never_raised(resources):
    content, builder = CONTENT, BUILDER
    by_kind: dict[str, list[Any]] = {"Condition": [], "Observation": []}
    for r in resources:
        by_kind["Condition" if r.get("resourceType") == "Condition" else "Observation"].append(r)
    record = builder.build(PATIENT_ID, by_kind, None, AS_OF)
    assess(content, record)  # and the rules run on whatever survived


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_as_a_bundle_entry_never_raises(value):
    content, builder = CONTENT, BUILDER
    record = builder.build(PATIENT_ID, {"Observation": [value], "Patient": [value]}, None,
                           AS_OF)
    assess(content, record)
