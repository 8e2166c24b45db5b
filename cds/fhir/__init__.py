"""FHIR-side helpers: value sets (and, as the engine grows, the record readers)."""
