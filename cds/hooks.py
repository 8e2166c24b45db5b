"""CDS Hooks 2.0 wire models, field for field from the specification (HL7/cds-hooks v2.0.1).

Requests are parsed strictly enough to give a useful 400; responses are built from these
models so that nothing the service sends can break the specification (summary < 140
characters, indicator enum, selectionBehavior whenever there are suggestions, no nulls).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


def _unicode_text(value: str) -> str:
    """Refuse lone UTF-16 surrogates ("\\ud800" in JSON): they are not text, and neither a
    database nor a UTF-8 response can hold them."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("contains a lone UTF-16 surrogate, which is not valid text") from exc
    return value


Text = Annotated[str, AfterValidator(_unicode_text)]
NonEmpty = Annotated[Text, StringConstraints(min_length=1)]
Extension = dict[str, Any]
USER_TYPES = {"Practitioner", "PractitionerRole", "Patient", "RelatedPerson"}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class WireModel(BaseModel):
    """Base for all wire objects: unknown fields are kept (the spec allows `extension`)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """JSON-ready dict without nulls: the spec forbids null or empty optional values."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


# ---------------------------------------------------------------- discovery


class ServiceDefinition(WireModel):
    hook: NonEmpty
    title: str | None = None
    description: NonEmpty
    id: NonEmpty
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None
    extension: Extension | None = None


class DiscoveryResponse(WireModel):
    services: list[ServiceDefinition]


# ---------------------------------------------------------------- request


class FhirAuthorization(WireModel):
    access_token: NonEmpty
    token_type: Literal["Bearer"]
    expires_in: int
    scope: NonEmpty
    subject: NonEmpty
    patient: str | None = None

    def __repr__(self) -> str:  # never leak the token into logs or tracebacks
        return f"FhirAuthorization(token_type='Bearer', subject={self.subject!r}, access_token=***)"

    __str__ = __repr__


class HookContext(WireModel):
    """Context of patient-view and encounter-start: the fields both hooks define."""

    userId: NonEmpty
    patientId: NonEmpty
    encounterId: str | None = None

    @field_validator("patientId")
    @classmethod
    def _bare_id(cls, value: str) -> str:
        if not FHIR_ID.match(value):
            raise ValueError("patientId must be a bare FHIR id (e.g. '1288992'), not 'Patient/…'")
        return value

    @field_validator("userId")
    @classmethod
    def _typed_reference(cls, value: str) -> str:
        kind, _, ident = value.partition("/")
        if kind not in USER_TYPES or not ident:
            raise ValueError(
                "userId must be 'Practitioner/<id>', 'PractitionerRole/<id>', 'Patient/<id>' "
                "or 'RelatedPerson/<id>'"
            )
        return value


class HookRequest(WireModel):
    hook: NonEmpty
    hookInstance: UUID
    fhirServer: AnyHttpUrl | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, dict[str, Any] | None] | None = None
    extension: Extension | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is present (cds-r-1)")
        return self


# ---------------------------------------------------------------- response


class Coding(WireModel):
    system: NonEmpty
    code: NonEmpty
    display: str | None = None


class Source(WireModel):
    label: NonEmpty
    url: AnyHttpUrl | None = None
    icon: AnyHttpUrl | None = None
    topic: Coding | None = None


class Action(WireModel):
    type: Literal["create", "update", "delete"]
    description: NonEmpty
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _delete_by_id(self) -> Action:
        if self.type == "delete" and (self.resourceId is None or self.resource is not None):
            raise ValueError(
                "a delete action names resourceId and carries no resource (cds-resp-2)"
            )
        if self.type in {"create", "update"} and self.resource is None:
            raise ValueError(f"a {self.type} action carries the resource")
        return self


class Suggestion(WireModel):
    label: NonEmpty
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(WireModel):
    label: NonEmpty
    url: AnyHttpUrl
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only valid on smart links (cds-resp-3)")
        return self


class OverrideReason(Coding):
    display: NonEmpty  # required for override reasons (cds-resp-4)


Indicator = Literal["info", "warning", "critical"]


class Card(WireModel):
    uuid: str | None = None
    summary: Annotated[str, StringConstraints(min_length=1, max_length=139)]
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReason] | None = None
    links: list[Link] | None = None
    extension: Extension | None = None

    @model_validator(mode="after")
    def _selection_behavior(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError(
                "selectionBehavior is required when there are suggestions (cds-resp-6)"
            )
        if self.selectionBehavior == "at-most-one" and self.suggestions:
            recommended = sum(1 for s in self.suggestions if s.isRecommended)
            if recommended > 1:
                raise ValueError("at-most-one allows one recommended suggestion (cds-resp-1)")
        for empty in ("suggestions", "overrideReasons", "links"):
            if getattr(self, empty) == []:
                raise ValueError(f"{empty} must be left out rather than empty")
        return self


class HookResponse(WireModel):
    cards: list[Card]
    systemActions: list[Action] | None = None
    extension: Extension | None = None


# ---------------------------------------------------------------- feedback


class AcceptedSuggestion(WireModel):
    id: NonEmpty


class OverrideReasonFeedback(WireModel):
    reason: Coding | None = None
    userComment: Text | None = None


class Feedback(WireModel):
    card: NonEmpty
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReasonFeedback | None = None
    outcomeTimestamp: Annotated[Text, Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> Feedback:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("accepted feedback lists acceptedSuggestions (cds-fb-1)")
        if self.outcome == "overridden" and self.acceptedSuggestions:
            raise ValueError("overridden feedback has no acceptedSuggestions (cds-fb-2)")
        return self

    @field_validator("outcomeTimestamp")
    @classmethod
    def _iso_timestamp(cls, value: str) -> str:
        from datetime import datetime

        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("outcomeTimestamp must be an ISO 8601 date-time") from exc
        return value


class FeedbackRequest(WireModel):
    feedback: Annotated[list[Feedback], Field(min_length=1)]
