"""SMART on FHIR apps the cards link to: their definitions in cards/apps.toml, the
Questionnaire each publishes, the reader of the answers, and the app itself (static files)."""
