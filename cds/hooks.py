"""CDS Hooks 2.0 wire models, field for field from the specification (HL7/cds-hooks v2.0.1).

Requests are parsed strictly enough to give a useful 400; responses follow these models so
that nothing the service sends can break the specification (summary < 140 characters,
indicator enum, selectionBehavior whenever there are suggestions, no nulls). The cards of a
hook call are built as JSON by cds.cards and checked here (`check_card`'s rules, cheaper
than validating every call through the models; `check_own_values` for the values a card's
checked template parts leave to it); `Card.issued` wraps them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, get_args
from uuid import UUID

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
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

    @classmethod
    def checked(cls, fields: dict[str, Any]) -> Self:
        """An instance of values already checked against this model (`check_card`, or models
        validated once at content load), without validating them again: on the hook path
        pydantic's validation costs more than building the card. Fields left out are None;
        a dict that gives every field, in the model's order, becomes the instance's own."""
        defaults, private = _blank(cls)
        model = _new(cls)
        _set(model, "__dict__", fields if len(fields) == len(cls.__pydantic_fields__)
             else {**defaults, **fields})
        _set(model, "__pydantic_fields_set__", set(fields))
        _set(model, "__pydantic_extra__", {})
        _set(model, "__pydantic_private__", None if private is None else dict(private))
        return model


# as pydantic's model_construct does, for a fifth of its cost
_new = object.__new__
_set = object.__setattr__


@cache
def _blank(cls: type[WireModel]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The default of each optional field (None in all wire models) and of each private
    attribute (None if the model has none)."""
    defaults = {name: info.default for name, info in cls.model_fields.items()
                if not info.is_required()}
    private = {name: attr.get_default() for name, attr in cls.__private_attributes__.items()}
    return defaults, private or None


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
INDICATORS = frozenset(get_args(Indicator))
SUMMARY_LIMIT = 139  # the spec: "<140 characters"
_SELECTION = frozenset({"at-most-one", "any"})
_ACTIONS = frozenset({"create", "update", "delete"})


class Card(WireModel):
    uuid: str | None = None
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_LIMIT)]
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
        private = getattr(self, "__pydantic_private__", None)
        if private and private.get("_wire") is not None:
            return self  # an issued card: its JSON and template parts were checked (issued)
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

    _wire: dict[str, Any] | None = PrivateAttr(default=None)
    # an issued card's models, until first read (`issued`): the function that makes them
    _models: Callable[[], dict[str, Any]] | None = PrivateAttr(default=None)

    @classmethod
    def issued(cls, wire: dict[str, Any], models: Callable[[], dict[str, Any]]) -> Card:
        """A card the service sends: `wire` is its JSON, and `models` a function that makes
        the same values as models (all the fields, in the model's order) for the code that
        reads cards as models (tests, tools). Its source, suggestions, override reasons and
        links come from parts of cds.cards' kit, checked once against the models, so only its
        own values are checked here (`check_own_values`). `wire()` returns that JSON until a
        field is assigned.

        The card holds only its own values (the JSON's) until anything reads more of it as a
        model (a nested model, a dump, a copy, a comparison): the HTTP path reads only those
        values and the JSON, and most responses are never read as models at all."""
        card = _new(cls)
        # the JSON leaves out what has no value; the fields in the model's order
        _set(card, "__dict__", {"uuid": wire.get("uuid"), "summary": wire["summary"],
                                "detail": wire.get("detail"), "indicator": wire["indicator"],
                                "selectionBehavior": wire.get("selectionBehavior"),
                                "extension": wire.get("extension")})
        _set(card, "__pydantic_private__", {"_wire": check_own_values(wire), "_models": models})
        return card

    def _build(self) -> None:
        """Make an issued card's models, if not made yet (`issued`): all its fields, in the
        model's order. Marked made only once they are all in place, so that a reader in
        another thread either finds them or makes them too (the same values)."""
        private = self.__pydantic_private__
        models = private["_models"]  # type: ignore[index]  # Card has private attributes
        if models is None:
            return
        fields = models()
        _set(self, "__pydantic_fields_set__", set(fields))
        _set(self, "__pydantic_extra__", {})
        _set(self, "__dict__", fields)
        private["_models"] = None  # type: ignore[index]

    if not TYPE_CHECKING:  # as pydantic's own __getattr__: mypy keeps checking attributes

        def __getattr__(self, name: str) -> Any:
            """A field an issued card has not made yet (or pydantic's storage of the fields
            set and extra values): made now, then read."""
            try:
                pending = object.__getattribute__(self, "__pydantic_private__")["_models"]
            except (AttributeError, KeyError, TypeError):  # not fully made: pydantic's answer
                pending = None
            if pending is None:
                return super().__getattr__(name)
            self._build()
            return getattr(self, name)

    # what reads the fields without asking for them one by one makes them first
    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # (no return type: the model's JSON schema stays the schema of its fields)
        self._build()
        return handler(self)

    def __eq__(self, other: object) -> bool:
        self._build()
        if isinstance(other, Card):
            other._build()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # as every mutable model

    def __iter__(self) -> Generator[tuple[str, Any], None, None]:
        self._build()
        return super().__iter__()

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        self._build()
        return super().__repr_args__()

    def __copy__(self) -> Self:
        self._build()
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        self._build()
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        self._build()
        return super().__getstate__()

    def wire(self) -> dict[str, Any]:
        """The card's JSON: as issued (read it, don't edit it), else from the model."""
        # pydantic's own storage of private attributes, read directly: its attribute lookup
        # costs more than the rest of wire()
        issued = self.__pydantic_private__["_wire"]  # type: ignore[index]  # Card has one
        return issued if issued is not None else super().wire()

    def __setattr__(self, name: str, value: Any) -> None:
        self._build()
        super().__setattr__(name, value)
        if name in Card.model_fields:
            self._wire = None  # the issued JSON no longer says what the card says

    def __delattr__(self, name: str) -> None:
        self._build()
        super().__delattr__(name)


def check_card(card: dict[str, Any]) -> dict[str, Any]:
    """The rules `Card` validates, on a card's JSON: what any card the service sends must
    obey (cds-resp-1..6, no nulls, no empty lists). Cheap enough for every card of every
    response; tests compare it with the models on every example."""
    check_own_values(card)
    source = card.get("source")
    if not isinstance(source, dict) or not source.get("label"):
        raise ValueError("a card names its source with a label")
    for key in ("suggestions", "overrideReasons", "links"):
        if key in card and not card[key]:
            raise ValueError(f"{key} must be left out rather than empty")
    suggestions = card.get("suggestions")
    if suggestions:
        behaviour = card.get("selectionBehavior")
        if behaviour not in _SELECTION:
            raise ValueError(
                "selectionBehavior is required when there are suggestions (cds-resp-6)")
        if behaviour == "at-most-one" and sum(1 for s in suggestions
                                               if s.get("isRecommended")) > 1:
            raise ValueError("at-most-one allows one recommended suggestion (cds-resp-1)")
        for suggestion in suggestions:
            if not suggestion.get("label"):
                raise ValueError("a suggestion has a label")
            for action in suggestion.get("actions", ()):
                _check_action(action)
    return card


def check_own_values(card: dict[str, Any]) -> dict[str, Any]:
    """The rules of `check_card` that a card's own values can break (summary length,
    indicator, detail, no nulls), for a card whose source, suggestions, override reasons and
    links come from templates already checked against the models."""
    summary = card.get("summary")
    if not isinstance(summary, str) or not 0 < len(summary) <= SUMMARY_LIMIT:
        raise ValueError(f"card summary must be 1 to {SUMMARY_LIMIT} characters: {summary!r}")
    if card.get("indicator") not in INDICATORS:
        raise ValueError(f"card indicator {card.get('indicator')!r} is not one of {INDICATORS}")
    if None in card.values():
        raise ValueError("a card leaves out what it has no value for, rather than null")
    return card


def _check_action(action: dict[str, Any]) -> None:
    kind = action.get("type")
    if kind not in _ACTIONS or not action.get("description"):
        raise ValueError("an action has a type (create, update, delete) and a description")
    if kind == "delete" and ("resourceId" not in action or "resource" in action):
        raise ValueError("a delete action names resourceId and carries no resource (cds-resp-2)")
    if kind != "delete" and not isinstance(action.get("resource"), dict):
        raise ValueError(f"a {kind} action carries the resource")


class HookResponse(WireModel):
    cards: list[Card]
    systemActions: list[Action] | None = None
    extension: Extension | None = None

    def wire(self) -> dict[str, Any]:
        """The response's JSON: each card's own (built once, as issued)."""
        if (self.systemActions is None and self.extension is None
                and not self.__pydantic_extra__):
            return {"cards": [card.wire() for card in self.cards]}
        return super().wire()


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
