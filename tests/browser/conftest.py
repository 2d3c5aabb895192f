"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

The fixtures are named ``chromium_*`` so that pytest-playwright's own ``browser``/``page``
fixtures (which would look for a downloaded browser) are never used. Without /usr/bin/chromium
the tests are skipped, unless ``--require-browser`` is given (CI), then they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ADMIN_PASSWORD, ADMIN_USER

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse the
# test's own (synchronous) database access.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium_browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if request.config.getoption("--require-browser"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium_browser: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """new_page(color_scheme="dark", width=390) -> a page in a fresh browser context."""
    contexts = []

    def make(*, color_scheme: str = "light", width: int = 1280, height: int = 900) -> Any:
        context = chromium_browser.new_context(
            base_url=live_server.url,
            color_scheme=color_scheme,
            viewport={"width": width, "height": height},
            is_mobile=width < 500,
            has_touch=width < 500,
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def chromium_page(new_page: Callable[..., Any]) -> Any:
    return new_page()


@pytest.fixture
def superuser(transactional_db: Any, django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser(
        ADMIN_USER, "admin@example.com", ADMIN_PASSWORD
    )


@pytest.fixture
def shot() -> Callable[..., None]:
    """shot(page, "name"): a full-page screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
