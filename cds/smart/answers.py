"""Reader of QuestionnaireResponses to an app's Questionnaire: the clinician's yes/no answers
to score criteria, kept on the PatientRecord for what the coded chart leaves unknown.

Only completed or amended responses about the patient in context, authored within the app's
`answers_valid_days`, count; for each criterion the latest answer wins. An answer never
overrides the coded chart (see FactEvaluator.score_results).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from cds.smart.apps import smart_apps
from cds.smart.questionnaire import score_of

if TYPE_CHECKING:
    from cds.record import PatientRecord, RecordBuilder

_COUNTED = {"completed", "amended"}


@dataclass(frozen=True)
class ClinicianAnswer:
    """A yes/no answer to one criterion of a score, with where it was recorded."""

    score: str
    criterion: str
    value: bool
    reference: str
    text: str
    when: datetime


def answer_key(score_id: str, criterion_id: str) -> str:
    return f"{score_id}/{criterion_id}"


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def read_questionnaire_response(builder: RecordBuilder, record: PatientRecord,
                                raw: dict[str, Any]) -> None:
    """A RecordBuilder reader (see its `_readers`): only `builder.content` is used."""
    canonical = str(raw.get("questionnaire") or "").split("|")[0]
    app = next((a for a in smart_apps(builder.content) if a.questionnaire == canonical), None)
    if app is None or raw.get("status") not in _COUNTED:
        return
    try:
        response = QuestionnaireResponse.model_validate(raw)
    except (ValidationError, ValueError, TypeError, RecursionError):  # e.g. 450-deep items
        record.skipped.append(f"QuestionnaireResponse/{raw.get('id', '?')}: invalid FHIR")
        return
    subject = str(response.subject.reference or "") if response.subject else ""
    if subject.rstrip("/").split("/")[-1] != record.patient_id:
        return  # answers about someone else (or no one) never count for this patient
    when = _when(response.authored)
    if when is None or not (record.as_of - timedelta(days=app.answers_valid_days) <= when
                            <= record.as_of + timedelta(hours=12)):
        return
    criteria = {c.id: c for c in score_of(builder.content, app.score).criteria}
    ref = f"QuestionnaireResponse/{response.id}" if response.id else "QuestionnaireResponse"
    for item in response.item or ():
        criterion = criteria.get(str(item.linkId))
        values = [a.valueBoolean for a in item.answer or () if a.valueBoolean is not None]
        if criterion is None or len(values) != 1:
            continue
        key = answer_key(app.score, criterion.id)
        earlier = record.answers.get(key)
        if earlier is not None and earlier.when >= when:
            continue
        text = (f"{'yes' if values[0] else 'no'}, the clinician's answer "
                f"({when.date().isoformat()})")
        record.answers[key] = ClinicianAnswer(app.score, criterion.id, bool(values[0]), ref,
                                              text, when)
