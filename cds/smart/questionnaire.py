"""The FHIR Questionnaire an app publishes, generated from its score's criteria in cards/.

One yes/no item per criterion (linkId = the criterion id in rules/*.toml, text = the
question the card asks), so the clinical content stays in one place and a QuestionnaireResponse
maps back to the criteria without a second table.
"""

from __future__ import annotations

from typing import Any

from cds.content import Content, Score
from cds.smart.apps import SmartApp


def score_of(content: Content, score_id: str) -> Score:
    scores = {content.dvt.score.id: content.dvt.score, content.pe_score.id: content.pe_score}
    return scores[score_id]


def questionnaire(content: Content, app: SmartApp) -> dict[str, Any]:
    score = score_of(content, app.score)
    source = content.sources[app.source]
    return {
        "resourceType": "Questionnaire",
        "id": app.id,
        "url": app.questionnaire,
        "version": app.questionnaire_version,
        "name": app.id.replace("-", "_").title().replace("_", ""),
        "title": app.questionnaire_title,
        "status": "active",
        "subjectType": ["Patient"],
        "description": (f"{score.title}: each criterion as a yes/no question, answered by the "
                        f"clinician when the coded record cannot answer it ({source.label})."),
        "item": [
            {
                "linkId": c.id,
                "text": c.ask or c.label,
                "prefix": f"{c.points:+g}",
                "type": "boolean",
            }
            for c in score.criteria
        ],
    }
