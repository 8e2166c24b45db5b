"""Browser tests: Playwright (Python) driving Debian's Chromium headless, one browser for the
whole session, against the real service on loopback. Skipped, saying why, where Chromium or
Playwright is missing (scripts/test.sh installs both in CI). Screenshots go to
tests/artifacts/ (gitignored)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cds.api import create_app
from cds.config import Settings
from cds.feedback import FeedbackStore
from cds.service import ThighPainService
from tests.fhir import AS_OF
from tests.net import serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install '.[test]')")
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; scripts/test.sh "
                    "does it in CI)")
    with sync_api.sync_playwright() as playwright:
        # launch() gives Chromium a fresh temporary profile (user-data-dir) every session
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class LiveService:
    url: str
    store: FeedbackStore
    service: ThighPainService


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The service on a free loopback port, development mode, evaluating at the pinned date."""
    db = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'feedback.sqlite3'}"
    store = FeedbackStore(db)
    service = ThighPainService()
    app = create_app(Settings(database_url=db), service=service, store=store, as_of=AS_OF)
    with serving(app) as base:
        yield LiveService(base, store, service)
