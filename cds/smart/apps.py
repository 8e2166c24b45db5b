"""The SMART apps in cards/apps.toml, and the `smart` links cards carry to them.

A link must be an absolute URL, but the service learns its own address only from the request
it answers (or CDS_PUBLIC_URL / the trust file's public_url behind a proxy). The HTTP layer
sets `public_base` for the duration of a request; with no base (an in-process replay) cards
carry no SMART link, since there is no address an EHR could launch.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from cds.content import Content, per_content
from cds.hooks import Link

if TYPE_CHECKING:  # the reasoning imports the record, which imports the answers reader
    from cds.reasoning.assessment import Assessment

# the address, or a function that works it out from the request (only a card with a SMART
# link needs it, and most answers have none)
public_base: ContextVar[str | Callable[[], str] | None] = ContextVar("public_base",
                                                                   default=None)


class SmartApp(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    label: str
    launch: str
    cards: list[str]
    score: str
    questionnaire: str
    questionnaire_version: str
    questionnaire_title: str
    answers_valid_days: int
    source: str


@cache
def _load(root: str) -> tuple[SmartApp, ...]:
    path = Path(root) / "apps.toml"
    if not path.exists():
        return ()
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    return tuple(SmartApp.model_validate(item) for item in data.get("apps", []))


@per_content
def smart_apps(content: Content) -> tuple[SmartApp, ...]:
    """The apps of this copy of cards/, checked against its scores and sources (once per
    copy: every hook call asks)."""
    apps = _load(content.root)
    scores = {content.dvt.score.id, content.pe_score.id}
    for app in apps:
        if app.score not in scores or app.source not in content.sources:
            raise ValueError(f"cards/apps.toml: app {app.id} names an unknown score or source")
    return apps


def smart_links(assessment: Assessment, content: Content) -> dict[str, list[Link]]:
    """The `smart` links each card type carries (by the card extension's cardType), when the
    service knows its public address and an app has something to ask: its score still has
    open criteria (and, for the Wells DVT app, no DVT is on record already)."""
    base = public_base.get()
    if not base:
        return {}
    links: dict[str, list[Link]] = {}
    scores = assessment.scores  # a property that builds its dict on every read: read once
    for app in smart_apps(content):
        score = scores.get(app.score)
        if score is None or not (score.unknown or score.pending_judgement):
            continue
        if app.score == content.dvt.score.id and assessment.dvt.diagnosed.met:
            continue
        if callable(base):  # worked out from the request only now that a card needs it
            base = base()
            if not base:
                return {}
        link = _smart_link(app.label, base.rstrip("/") + "/" + app.launch.lstrip("/"))
        for card_type in app.cards:
            links.setdefault(card_type, []).append(link)
    return links


@lru_cache(maxsize=64)
def _smart_link(label: str, url: str) -> Link:
    """Validated once per public address rather than on every call."""
    return Link(label=label, url=url, type="smart")  # type: ignore[arg-type]
