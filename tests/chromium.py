"""Browser fixtures shared by the console tests (imported by tests/conftest.py).

Playwright's sync API runs one instance per process, so every console test module uses
this one session-wide Chromium: Debian's package, never a browser Playwright downloads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path(os.environ.get("SURVEIL_CHROMIUM", "/usr/bin/chromium"))


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
