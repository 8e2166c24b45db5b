"""FHIR R4 JSON as the service reads it: value sets, typed access to the elements the rules
use (elements.py), and full validation with fhir.resources for when a whole bundle must be
checked (strict.py, `cds replay --strict`); and talking to an EHR's FHIR server: where the
service may connect (scope.py) and within what bounds (transport.py)."""
