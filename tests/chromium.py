"""Browser fixtures shared by the console tests (imported by tests/conftest.py).

Playwright's sync API runs one instance per process, so every console test module uses
this one session-wide Chromium: Debian's package, never a browser Playwright downloads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path(os.environ.get("SURVEIL_CHROMIUM", "/usr/bin/chromium"))
#: A laptop screen: what the console is designed for.
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
#: Searches and rule examples are embedded by real models on two cores: generous, not endless.
TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; missing, it fails in CI and skips elsewhere."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = (
            f"Chromium not found at {CHROMIUM}: run scripts/ensure-chromium.sh "
            "(Debian's chromium package) or set SURVEIL_CHROMIUM"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def shots(request: pytest.FixtureRequest) -> Path:
    """Where screenshots go: test-output/console (or $SURVEIL_TEST_OUTPUT/console)."""
    out = Path(os.environ.get("SURVEIL_TEST_OUTPUT", "test-output"))
    folder = request.config.rootpath / out / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def console_page(
    browser: Browser, base_url: str, errors: list[str], **context_args: Any
) -> Iterator[Page]:
    """A fresh context (empty sessionStorage) at the console's login, on a laptop screen
    unless `context_args` give another `viewport`.

    Console errors and uncaught page errors are appended to `errors`, for the test to
    assert on; the context is closed afterwards.
    """
    args: dict[str, Any] = {"viewport": VIEWPORT, **context_args}
    context = browser.new_context(base_url=base_url, **args)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} @ {message.location.get('url', '')}")

    def on_page_error(error: PlaywrightError) -> None:
        errors.append(f"pageerror: {error.name}: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        page.goto("/")
        expect(page.locator("#login-view")).to_be_visible()
        yield page
    finally:
        context.close()
