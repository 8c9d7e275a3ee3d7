"""The Cameras view of the operator console in a real browser: Debian's Chromium, driven by
Playwright, over the live server of the shared API world (real PostgreSQL catalog).

Health goes in the way `surveil run` writes it: rows upserted through the catalog's real
health store, the live ones re-stamped every second by a writer thread standing in for
the health reporter. The console must show each camera's light and state in words, its
rates and counters, its last error (escaped, truncated, whole in the title), mark health
nobody rewrites as stale, count it all in the summary, and pick up a change by itself
while the view is in sight, and only then.

Fails on any console error or uncaught page error, like the other console tests (whose
page and screenshot fixtures it shares). Screenshot: test-output/console/cameras.png.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import test_console_browser
from api_world import ApiWorld, LiveServer
from playwright.sync_api import Page, Request, expect
from test_console_browser import Console

from surveil.storage.health import CameraHealth, SqlHealth

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Registered by this test, disabled, never read live: a camera without health.
SPARE = "zz-spare"
#: Markup in it must show as text; longer than the list shows, so it is cut there.
ERROR = (
    "connect to rtsp://ops:***@10.0.0.9/live failed: <b>Connection refused</b> "
    "(errno 111); retrying in 8 s after 4 attempts, giving up on nothing"
)
#: What the console refreshes at, and how long a test waits to see that nothing came.
POLL_S = 5.0
#: The summary counts states in this order; a camera without health counts as "no data".
ORDER = ("online", "connecting", "stalled", "offline", "stopped", "no data")

Row = Callable[[datetime], CameraHealth]

#: The fresh console page on a laptop-sized screen, as the other console tests get it.
console = test_console_browser.console


class HealthWriter:
    """Stands in for `surveil run`'s health reporter: every second it upserts each row,
    built for that moment, through the real health store (one transaction, like it)."""

    def __init__(self, store: SqlHealth, interval: float = 1.0) -> None:
        self._store = store
        self._interval = interval
        self._rows: dict[str, Row] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-writer", daemon=True)
        self.failures: list[BaseException] = []

    def set(self, camera: str, row: Row) -> None:
        """Write this camera's row from now on, starting at once."""
        with self._lock:
            self._rows[camera] = row
        self.write()

    def write(self) -> None:
        now = datetime.now(UTC)
        with self._lock:
            rows = [make(now) for make in self._rows.values()]
        self._store.write(rows)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.write()
            except Exception as exc:  # surfaced by the test, not lost in a thread
                self.failures.append(exc)

    def __enter__(self) -> HealthWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop, and leave what `surveil run` leaves when it stops: a final "stopped" row."""
        self._stop.set()
        self._thread.join(timeout=10)
        now = datetime.now(UTC)
        with self._lock:
            final = [
                replace(make(now), state="stopped", fps=0.0, keyframes_per_s=0.0)
                for make in self._rows.values()
            ]
        self._store.write(final)


def online(camera: str, *, keyframes: int, lag_s: float = 2.0, error: str | None = None) -> Row:
    """A camera delivering frames, its health rewritten every second."""

    def row(now: datetime) -> CameraHealth:
        last = now - timedelta(seconds=lag_s)
        return CameraHealth(camera, "online", last, 12.5, 0.4, keyframes, 3, 0, error, now)

    return row


def offline_since(camera: str, down: datetime, written: datetime) -> Row:
    """A camera that failed at `down`, its health last written at `written`."""

    def row(now: datetime) -> CameraHealth:
        return CameraHealth(camera, "offline", down, 0.0, 0.0, 57, 17, 4, ERROR, written)

    return row


@pytest.fixture
def spare_camera(api_world: ApiWorld) -> str:
    """A disabled camera without footage or health (registered once per session)."""
    catalog = api_world.services.catalog
    if SPARE not in {c.id for c in catalog.list_cameras()}:
        catalog.create_camera(camera_id=SPARE, name="Spare dock", url=None, enabled=False)
    return SPARE


def _cameras(page: Page, server: LiveServer) -> list[dict[str, Any]]:
    """GET /api/v1/cameras as the viewer, from the page's own origin."""
    response = page.request.get(
        "/api/v1/cameras", headers={"Authorization": f"Bearer {server.keys['viewer']}"}
    )
    assert response.ok, response.text()
    cameras: list[dict[str, Any]] = response.json()["cameras"]
    return cameras


def _expected_summary(cameras: list[dict[str, Any]], now: datetime) -> str:
    """The summary line the console must show for these cameras (its rules, written out)."""
    states = Counter(c["health"]["state"] if c["health"] else "no data" for c in cameras)
    head = f"{len(cameras)} camera{'' if len(cameras) == 1 else 's'}: " + ", ".join(
        f"{states[s]} {s}" for s in ORDER if states[s]
    )
    stale = sum(
        1
        for c in cameras
        if c["health"]
        and c["health"]["state"] != "stopped"
        and now - datetime.fromisoformat(c["health"]["updated_at"]) > timedelta(seconds=15)
    )
    disabled = sum(1 for c in cameras if not c["enabled"])
    extra = [f"{n} {what}" for n, what in ((stale, "stale"), (disabled, "disabled")) if n]
    return head + "".join(f" · {e}" for e in extra)


def _light(page: Page, camera: str, state: str, label: str) -> None:
    """The row's light has the state's colour class, and its state is said in words."""
    row = page.locator(f'#cameras .camera[data-id="{camera}"]')
    expect(row).to_have_attribute("data-state", state)
    expect(row.locator(".light")).to_have_class(re.compile(rf"\blight-{state}\b"))
    expect(row.locator(".light")).to_have_attribute("aria-hidden", "true")
    expect(row.locator(".c-state")).to_have_text(label)


def test_viewer_watches_camera_health(
    console: Console, api_world: ApiWorld, spare_camera: str
) -> None:
    page, server = console.page, console.server
    store = api_world.services.health
    requests: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.endswith("/api/v1/cameras"):
            requests.append(request.url)

    page.on("request", on_request)
    now = datetime.now(UTC)
    down = now - timedelta(minutes=7)
    with HealthWriter(store) as writer:
        writer.set("lobby", online("lobby", keyframes=321))
        writer.set("cam09", offline_since("cam09", down, written=now - timedelta(minutes=2)))

        console.login("viewer")
        # From the Alerts tab by keyboard, as in any tab list.
        page.click("#tab-alerts")
        page.keyboard.press("ArrowRight")
        view = page.locator("#cameras-view")
        expect(view).to_be_visible()
        expect(page.locator("#tab-cameras")).to_be_focused()
        expect(page.locator("#tab-cameras")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#search-view")).to_be_hidden()
        expect(page.locator("#alerts-view")).to_be_hidden()
        assert page.evaluate("location.hash") == "#cameras"

        cams = _cameras(page, server)
        rows = page.locator("#cameras .camera")
        expect(rows).to_have_count(len(cams))
        assert rows.evaluate_all("els => els.map(e => e.dataset.id)") == [c["id"] for c in cams]
        expect(page.locator("#cameras-summary")).to_have_text(
            _expected_summary(cams, datetime.now(UTC))
        )
        summary = page.locator("#cameras-summary").inner_text()
        assert re.search(r"\b1 offline\b", summary) and "no data" in summary, summary

        # Online: green, the newest frame seconds ago (the time itself in the title), rates.
        _light(page, "lobby", "online", "online")
        lobby = page.locator('#cameras .camera[data-id="lobby"]')
        expect(lobby).to_have_attribute("data-stale", "false")
        expect(lobby.locator(".tag-stale")).to_have_count(0)
        frame = lobby.locator(".c-last time")
        expect(frame).to_have_text(re.compile(r"^(\d+ s ago|just now)$"))
        # The time itself, to the millisecond, in the zone the console shows (UTC by default).
        expect(frame).to_have_attribute(
            "title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$")
        )
        for cell, text in (
            ("c-fps", "12.5"),
            ("c-kps", "0.40"),
            ("c-keyframes", "321"),
            ("c-drops", "3"),
            ("c-reconnects", "0"),
        ):
            expect(lobby.locator(f".{cell}")).to_have_text(text)
        expect(lobby.locator(".c-error")).to_have_text("")

        # Offline: red, the error as text (no markup), cut short with the whole in the title,
        # and stale, since nothing has rewritten it for two minutes.
        _light(page, "cam09", "offline", "offline")
        cam09 = page.locator('#cameras .camera[data-id="cam09"]')
        expect(cam09).to_have_attribute("data-stale", "true")
        expect(cam09.locator(".tag-stale")).to_have_text("stale")
        expect(cam09.locator(".tag-stale")).to_have_attribute(
            "title", re.compile(r"^Health last written 2 min ago .*surveil run")
        )
        expect(cam09.locator(".c-last time")).to_have_text("7 min ago")
        expect(cam09.locator(".c-last time")).to_have_attribute(
            "title", down.strftime("%Y-%m-%d %H:%M:%S.") + f"{down.microsecond // 1000:03d} UTC"
        )
        error = cam09.locator(".c-error-text")
        expect(error).to_have_attribute("title", ERROR)
        shown = error.inner_text()
        assert shown.endswith("…") and len(shown) < len(ERROR), shown
        assert ERROR.startswith(shown[:-1]) and "<b>Connection refused</b>" in shown, shown
        expect(cam09.locator(".c-error b")).to_have_count(0)
        for cell, text in (("c-fps", "0.0"), ("c-drops", "17"), ("c-reconnects", "4")):
            expect(cam09.locator(f".{cell}")).to_have_text(text)

        # Never live and disabled: grey, "no data", dimmed, no numbers.
        _light(page, SPARE, "none", "no data")
        spare = page.locator(f'#cameras .camera[data-id="{SPARE}"]')
        expect(spare).to_have_class(re.compile(r"\bdisabled\b"))
        expect(spare.locator(".c-camera .tag")).to_have_text("disabled")
        expect(spare.locator(".c-camera")).to_contain_text("Spare dock")
        expect(spare.locator(".c-fps")).to_have_text("—")
        assert spare.evaluate("e => getComputedStyle(e.cells[0]).opacity") == "0.5"
        expect(page.locator("#cameras-updated")).to_contain_text("Updated")
        console.shot("cameras.png")

        # The camera comes back: the next refresh shows it, without a reload or a click.
        page.evaluate("window.__sameDocument = true")
        writer.set("cam09", online("cam09", keyframes=58, lag_s=1.0, error=ERROR))
        expect(cam09).to_have_attribute("data-state", "online", timeout=(POLL_S + 10) * 1000)
        _light(page, "cam09", "online", "online")
        expect(cam09).to_have_attribute("data-stale", "false")
        expect(cam09.locator(".tag-stale")).to_have_count(0)
        expect(cam09.locator(".c-keyframes")).to_have_text("58")
        expect(cam09.locator(".c-error-text")).to_have_class(re.compile(r"\bpast\b"))
        assert page.evaluate("window.__sameDocument") is True
        cams = _cameras(page, server)
        expect(page.locator("#cameras-summary")).to_have_text(
            _expected_summary(cams, datetime.now(UTC))
        )
        assert "offline" not in page.locator("#cameras-summary").inner_text()

        # Out of sight, no refreshing; back in sight, at once.
        page.click("#tab-search")
        expect(view).to_be_hidden()
        before = len(requests)
        page.wait_for_timeout(POLL_S * 1000 + 1500)
        assert len(requests) == before, requests[before:]
        with page.expect_request(lambda r: r.url.endswith("/api/v1/cameras")):
            page.click("#tab-cameras")
        expect(view).to_be_visible()
        expect(page.locator("#cameras .camera")).to_have_count(len(cams))

        # A reload keeps the view; logging out stops the refreshing for good.
        page.reload()
        expect(view).to_be_visible()
        _light(page, "cam09", "online", "online")
        page.click("#logout")
        expect(page.locator("#login-view")).to_be_visible()
        before = len(requests)
        page.wait_for_timeout(POLL_S * 1000 + 1500)
        assert len(requests) == before, requests[before:]
        assert not writer.failures, writer.failures

    console.assert_clean()


def test_operator_estimates_storage_per_camera(console: Console, api_world: ApiWorld) -> None:
    """The Storage panel shows what GET /api/v1/storage says, per camera; viewers may not."""
    page, server = console.page, console.server
    console.login("viewer")
    page.click("#tab-cameras")
    expect(page.locator("#storage-load")).to_be_disabled()
    expect(page.locator("#storage-note")).to_contain_text("operator or admin")
    page.click("#logout")

    console.login("operator")
    page.click("#tab-cameras")
    expect(page.locator("#storage-load")).to_be_enabled()
    page.click("#storage-load")
    rows = page.locator("#storage-rows tr")
    expect(rows.first).to_be_visible(timeout=60_000)
    got = httpx.get(
        f"{server.base_url}/api/v1/storage",
        headers={"Authorization": f"Bearer {server.keys['operator']}"},
        timeout=60,
    ).json()
    expect(rows).to_have_count(len(got["cameras"]))
    for cam in got["cameras"]:
        row = page.locator(f'#storage-rows tr[data-camera="{cam["camera_id"]}"]')
        expect(row.locator("td").nth(3)).to_have_text(str(cam["days_stored"]))
    expect(page.locator("#storage-summary")).to_contain_text("stored")
    expect(page.locator("#storage-summary")).to_contain_text("no budget")
    console.shot("storage.png")
    console.assert_clean()
