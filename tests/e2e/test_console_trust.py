"""Trust on day one, in the console (issue 9): what it shows can be taken at its word.

Real Chromium (Debian's), driven by Playwright, over a live server on a catalog of its own:
the MOT17-09 frames ingested by the real detector and embedders three times, as three
cameras a year apart, so that the timeline really spans a year. A second server reads the
same catalog with `detector.backend: motion` asked for explicitly, the degraded mode whose
warning every search carries.

- One zone everywhere, labelled (UTC by default, or local with its offset, remembered);
  typed times are read in the zone shown and sent with its offset.
- The timeline zooms (wheel around the pointer, drag to pan, Shift+drag to a range, a
  reset button) with ticks that follow the span; its marks stay clickable.
- Usable from 768 px wide: no overlapping buttons, no cut dates, no horizontal scroll.
- A file that is not an image, or too large, is refused in the browser: nothing is sent.
- No internal ids in labels.
- Results cut at the limit say so; warnings show in a banner above the results.

The browser runs in Europe/Berlin, so that UTC and local time differ (by one hour in
winter and two in summer: the cameras a year apart see both). Every test fails on any
console error or uncaught page error. Screenshots go to $SURVEIL_TEST_OUTPUT/console.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import pytest
from api_world import MOT09, T0, ApiWorld, LiveServer, built_world, serving, world_settings
from chromium import TIMEOUT_MS, console_page
from playwright.sync_api import Browser, Locator, Page, expect
from test_console_browser import _DROP_AND_PASTE, Console

from surveil.api.app import create_app
from surveil.container import Services, build_services
from surveil.ingest.pipeline import IngestOptions
from surveil.storage.health import CameraHealth

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Not UTC, and with summer time: the local offset differs between the cameras.
TIMEZONE = "Europe/Berlin"
#: The same four frames as three cameras: a year ago, half a year ago (summer), now.
CAMERAS = {
    "north": T0 - timedelta(days=365),
    "east": T0 - timedelta(days=180),
    "cam09": T0,
}
#: A narrow screen the console must still work on.
NARROW = {"width": 768, "height": 1024}
#: A floor only the example's own track reaches on each camera (a look-alike scores ~0.75).
OWN_TRACKS = {"min-score": "0.9"}
SEARCH = "/api/v1/search"


def _ingest(services: Services, shared: Path) -> None:
    for camera, start in CAMERAS.items():
        options = IngestOptions(camera_id=camera, all_frames=True)
        services.ingest(str(shared / MOT09), options, start=start)


@dataclass
class TrustWorld:
    """The year-long catalog served three times: as configured, with the motion detector,
    and with the shallowest search (search.max_candidates: 10)."""

    world: ApiWorld
    server: LiveServer
    degraded: LiveServer
    degraded_services: Services
    shallow: LiveServer


@pytest.fixture(scope="module")
def trust(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path, pg_server: str
) -> Iterator[TrustWorld]:
    root = tmp_path_factory.mktemp("console-trust")
    with built_world(root, pg_server, shared_data, _ingest) as world:
        # `serve` on the same catalog and storage, its settings asking for motion regions.
        assert world.settings.database.url
        motion = world_settings(
            root,
            world.settings.database.url,
            shared_data / "models",
            **{"detector.backend": "motion"},
        )
        degraded = build_services(motion)
        depth = world_settings(
            root,
            world.settings.database.url,
            shared_data / "models",
            **{"search.max_candidates": 10},
        )
        shallow = build_services(depth)
        try:
            with (
                serving(world.app, name="uvicorn-trust") as base_url,
                serving(create_app(degraded), name="uvicorn-motion") as motion_url,
                serving(create_app(shallow), name="uvicorn-shallow") as shallow_url,
            ):
                yield TrustWorld(
                    world,
                    LiveServer(base_url, world.keys, world.example_crop),
                    LiveServer(motion_url, world.keys, world.example_crop),
                    degraded,
                    LiveServer(shallow_url, world.keys, world.example_crop),
                )
        finally:
            shallow.close()
            degraded.close()


@contextmanager
def _console(
    browser: Browser, server: LiveServer, shots: Path, **context_args: Any
) -> Iterator[Console]:
    errors: list[str] = []
    with console_page(
        browser, server.base_url, errors, timezone_id=TIMEZONE, **context_args
    ) as page:
        yield Console(page, server, shots, errors)


@pytest.fixture
def console(browser: Browser, trust: TrustWorld, shots: Path) -> Iterator[Console]:
    """A fresh console on the year-long catalog, on a laptop screen, in Berlin."""
    with _console(browser, trust.server, shots) as c:
        yield c


def _search(console: Console, **fields: str) -> dict[str, Any]:
    """Fill the filters, press Search, wait for the results; the API's answer."""
    page = console.page
    for field, value in fields.items():
        page.fill(f"#{field}", value)
    before = console.generation()
    with page.expect_response(lambda r: r.url.endswith(SEARCH)) as answer:
        page.click("#search")
    console.wait_for_results(before)
    body: dict[str, Any] = answer.value.json()
    return body


def _search_by_crop(console: Console, **fields: str) -> dict[str, Any]:
    console.page.set_input_files("#crop-file", console.server.example_crop)
    return _search(console, label="person", **fields)


def _zone_label(ts: datetime, zone: str | None) -> str:
    if zone is None:
        return "UTC"
    offset = ts.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def shown(iso: str, zone: str | None = None, *, ms: bool = False, date: bool = True) -> str:
    """How the console must show an API time: in UTC, or in `zone`, with the zone's label."""
    ts = datetime.fromisoformat(iso)
    wall = ts.astimezone(ZoneInfo(zone) if zone else UTC)
    text = wall.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
    if ms:
        text += f".{wall.microsecond // 1000:03d}"
    return f"{text} {_zone_label(ts, zone)}"


def _field(ts: datetime, zone: str | None = None) -> str:
    """A date field's value for `ts` in the zone shown."""
    return ts.astimezone(ZoneInfo(zone) if zone else UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _create_and_test_rule(page: Page, name: str) -> Locator:
    """Save the open rule form as `name`, then test it from the day before the oldest footage."""
    page.fill("#rf-name", name)
    page.click("#rf-create")
    rule = page.locator("#rules .rule")
    expect(rule).to_have_count(1, timeout=TIMEOUT_MS)  # its examples are embedded first
    rule.locator(".test").click()
    page.fill("#rt-since", _field(CAMERAS["north"] - timedelta(days=1)))
    page.click("#rt-run")
    return rule


#: Chromium does not hand a multipart body with a file to Playwright: record the form's text
#: fields in the page instead, as the console passes them to fetch.
_RECORD_FORMS = """() => {
  window.__forms = [];
  const send = window.fetch;
  window.fetch = function (input, init) {
    if (init && init.body instanceof FormData) {
      const fields = [...init.body.entries()].filter(([, v]) => typeof v === "string");
      window.__forms.push(Object.fromEntries(fields));
    }
    return send.apply(this, arguments);
  };
}"""


def _field_value(ts: datetime, zone: str | None = None) -> re.Pattern[str]:
    """What a date field shows for `ts` (Chromium leaves ":00" seconds out)."""
    text = _field(ts, zone)
    return re.compile("^" + re.escape(text.removesuffix(":00")) + "(:00)?$")


def _sent(page: Page) -> dict[str, str]:
    """The text fields of the last form the console sent."""
    forms: list[dict[str, str]] = page.evaluate("window.__forms")
    assert forms, "the console sent no form"
    return forms[-1]


def _cameras(page: Page) -> set[str]:
    return set(
        page.locator("#sightings .sighting").evaluate_all("e => e.map(x => x.dataset.camera)")
    )


# ---------------------------------------------------------------------------------------
# 1. One zone everywhere, with its label, and a switch


def test_times_show_one_zone_with_its_label_and_a_switch(console: Console) -> None:
    page = console.page
    console.login("operator")
    expect(page.locator("#zone-utc")).to_have_attribute("aria-pressed", "true")  # the default
    expect(page.locator("#zone-local")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("label[for=since] .zone-tag")).to_have_text("UTC")

    body = _search_by_crop(console)
    assert {s["camera_id"] for s in body["sightings"]} == set(CAMERAS)
    rows = page.locator("#sightings .sighting")
    expect(rows).to_have_count(len(body["sightings"]))

    def check_rows(zone: str | None) -> None:
        for i in range(rows.count()):
            row = rows.nth(i)
            first = row.get_attribute("data-first") or ""
            last = row.get_attribute("data-last") or ""
            expect(row.locator(".s-first")).to_have_text(shown(first, zone))
            expect(row.locator(".s-last")).to_have_text(f"→ {shown(last, zone, date=False)}")

    check_rows(None)
    # The timeline's axis says the zone its ticks are in; the detail shows milliseconds.
    expect(page.locator("#timeline .axis-zone")).to_have_text("UTC")
    row = page.locator('#sightings .sighting[data-camera="east"]').first
    row.locator(".sighting-open").click()
    first_seen = row.get_attribute("data-first") or ""
    meta = page.locator("#detail-meta")
    expect(meta).to_contain_text(shown(first_seen, ms=True))
    page.keyboard.press("Escape")

    # A time typed is read in UTC, and sent with its offset.
    since = CAMERAS["cam09"] - timedelta(days=1)
    page.evaluate(_RECORD_FORMS)
    page.fill("#since", _field(since))
    _search(console)
    assert _sent(page)["since"] == since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _cameras(page) == {"cam09"}
    console.shot("zone-utc.png")

    # Local time: every time again, in Berlin time with its offset (summer time for
    # "east"), and the typed time still means the same instant.
    page.click("#zone-local")
    expect(page.locator("#zone-local")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("localStorage.getItem('surveil.zone')") == "local"
    expect(page.locator("#since")).to_have_value(_field_value(since, TIMEZONE))
    expect(page.locator("label[for=since] .zone-tag")).to_have_text("UTC+01:00")
    check_rows(TIMEZONE)
    expect(page.locator("#timeline .axis-zone")).to_have_text("UTC+01:00")
    page.fill("#since", "")
    _search(console)
    check_rows(TIMEZONE)
    summer = next(r for r in body["sightings"] if r["camera_id"] == "east")["first_seen"]
    assert shown(summer, TIMEZONE).endswith("UTC+02:00")
    expect(page.locator('#sightings .sighting[data-camera="east"] .s-first').first).to_contain_text(
        "UTC+02:00"
    )

    # Typed in local time: read as Berlin time (summer, +02:00) and sent with that offset.
    since = CAMERAS["east"] - timedelta(hours=1)
    page.fill("#since", _field(since, TIMEZONE))
    _search(console)
    typed = since.astimezone(ZoneInfo(TIMEZONE)).isoformat()
    assert typed.endswith("+02:00") and _sent(page)["since"] == typed
    assert _cameras(page) == {"east", "cam09"}
    console.shot("zone-local.png")

    # Remembered: after a reload the console is still in local time.
    page.reload()
    expect(page.locator("#zone-local")).to_have_attribute("aria-pressed", "true")
    page.select_option("#kf-camera", "east")
    # The field holds east's first time, in summer: its label says summer time's offset.
    expect(page.locator("label[for=kf-time] .zone-tag")).to_have_text("UTC+02:00")
    expect(page.locator("#kf-status")).to_contain_text(shown(CAMERAS["east"].isoformat(), TIMEZONE))
    page.click("#zone-utc")
    expect(page.locator("#kf-status")).to_contain_text(shown(CAMERAS["east"].isoformat()))
    assert page.evaluate("localStorage.getItem('surveil.zone')") == "utc"
    console.assert_clean()


# ---------------------------------------------------------------------------------------
# 2. The timeline zooms, pans and stays readable over a year

DAY_MS = 86_400_000


def _timeline(page: Page) -> dict[str, Any]:
    """The span shown and where its plot lies on the screen."""
    geometry: dict[str, Any] = page.locator("#timeline").evaluate(
        """svg => { const r = svg.getBoundingClientRect(); const d = svg.dataset;
          return {t0: +d.t0, t1: +d.t1, left: r.left + +d.left, plot: +d.plotWidth,
                  x: r.left, width: r.width, top: r.top, zoomed: d.zoomed === "true"}; }"""
    )
    return geometry


def _time_at(tl: dict[str, Any], client_x: float) -> float:
    return float(tl["t0"] + (client_x - tl["left"]) / tl["plot"] * (tl["t1"] - tl["t0"]))


def _readable_ticks(page: Page) -> list[str]:
    """The tick labels: at least three, none overlapping another or the axis' own labels,
    all inside the timeline; every mark at least 6 px wide (so it can be clicked)."""
    tl = _timeline(page)
    boxes: list[dict[str, Any]] = page.locator("#timeline .axis text").evaluate_all(
        """els => els.map(e => { const r = e.getBoundingClientRect();
          return {text: e.textContent, tick: e.classList.contains("tick"), left: r.left,
                  right: r.right, top: r.top, bottom: r.bottom}; })"""
    )
    ticks = sorted((b for b in boxes if b["tick"]), key=lambda b: b["left"])
    assert len(ticks) >= 3, ticks
    for a, b in itertools.pairwise(ticks):
        assert a["right"] + 2 <= b["left"], (a, b)  # labels apart
    for b in ticks:
        assert tl["x"] <= b["left"] and b["right"] <= tl["x"] + tl["width"], b
        for own in (o for o in boxes if not o["tick"]):  # the day and zone under the lanes
            apart = own["right"] <= b["left"] or b["right"] <= own["left"]
            assert apart or own["bottom"] <= b["top"] or b["bottom"] <= own["top"], (own, b)
    widths = page.locator("#timeline .mark").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert widths and min(widths) >= 5.9, widths
    return [b["text"] for b in ticks]


def _mark_center(page: Page, camera: str, near: float | None = None) -> tuple[int, int]:
    """A mark of the camera's lane shown on screen: the one nearest x=`near` (a lane holds
    one mark per sighting, and a zoom can push the others off the plot); whole pixels,
    as the pointer events a page gets say whole pixels too."""
    marks = page.locator(f'#timeline .lane[data-camera="{camera}"] .mark')
    boxes = [b for i in range(marks.count()) if (b := marks.nth(i).bounding_box()) is not None]
    assert boxes, f"no {camera} mark on screen"
    box = min(boxes, key=lambda b: 0 if near is None else abs(b["x"] + b["width"] / 2 - near))
    return round(box["x"] + box["width"] / 2), round(box["y"] + box["height"] / 2)


def test_timeline_zooms_pans_and_reads_over_a_year(console: Console) -> None:
    page = console.page
    console.login("operator")
    _search_by_crop(console)
    svg = page.locator("#timeline")
    tl = _timeline(page)
    assert tl["t1"] - tl["t0"] >= 365 * DAY_MS and not tl["zoomed"]
    expect(page.locator("#tl-reset")).to_be_visible()
    expect(page.locator("#tl-reset")).to_be_disabled()
    expect(page.locator("#tl-out")).to_be_disabled()
    # A year: a tick a month or a quarter, labelled by month, all readable.
    ticks = _readable_ticks(page)
    assert all(re.fullmatch(r"\d{4}-\d\d", t) for t in ticks), ticks
    expect(page.locator("#timeline .lane")).to_have_count(3)
    console.shot("timeline-year.png")

    # The wheel zooms around the pointer: the time under it stays put, step after step,
    # down to less than a day (aiming again at cam09's mark each time, as a person would).
    full = tl
    x = None
    while tl["t1"] - tl["t0"] > DAY_MS:
        x, y = _mark_center(page, "cam09", near=x)
        page.mouse.move(x, y)
        anchor = _time_at(tl, x)
        page.mouse.wheel(0, -800)
        expect(svg).not_to_have_attribute("data-t0", str(tl["t0"]))
        tl = _timeline(page)
        assert abs(_time_at(tl, x) - anchor) <= (tl["t1"] - tl["t0"]) / tl["plot"] * 2, anchor
    assert tl["zoomed"]
    expect(page.locator("#tl-reset")).to_be_enabled()
    # Under a day: ticks by the hour or minute (a new day by its date), still readable.
    ticks = _readable_ticks(page)
    assert all(re.fullmatch(r"\d\d:\d\d(:\d\d)?|\d{4}-\d\d-\d\d", t) for t in ticks), ticks
    expect(page.locator("#timeline-span")).to_contain_text("UTC")
    console.shot("timeline-zoomed.png")

    # A hit stays clickable when zoomed in.
    x, y = _mark_center(page, "cam09", near=x)
    plot = page.locator("#timeline").get_attribute("data-plot-width")
    page.mouse.click(x, y)
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-title")).to_have_text("cam09 · person")
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    # The open detail narrowed the timeline; measure only once it is redrawn full width.
    expect(svg).to_have_attribute("data-plot-width", str(plot))

    # A drag pans: dragging right by 150 px shows what was 150 px earlier; the click that
    # ends the drag opens nothing.
    tl = _timeline(page)
    lane = page.locator('#timeline .lane[data-camera="north"] .lane-bg').bounding_box()
    assert lane is not None
    start = round(tl["left"] + tl["plot"] / 2)
    y = round(lane["y"] + lane["height"] / 2)
    page.mouse.move(start, y)
    page.mouse.down()
    page.mouse.move(start + 150, y, steps=6)
    page.mouse.up()
    expect(svg).not_to_have_attribute("data-t0", str(tl["t0"]))
    panned = _timeline(page)
    per_px = (tl["t1"] - tl["t0"]) / tl["plot"]
    assert abs((tl["t0"] - panned["t0"]) - 150 * per_px) <= 3 * per_px, (tl, panned)
    assert panned["t1"] - panned["t0"] == pytest.approx(tl["t1"] - tl["t0"], rel=1e-6)
    expect(page.locator("#detail")).to_be_hidden()

    # Reset zoom shows everything again.
    page.click("#tl-reset")
    expect(svg).to_have_attribute("data-zoomed", "false")
    assert _timeline(page)["t0"] == full["t0"] and _timeline(page)["t1"] == full["t1"]
    expect(page.locator("#tl-reset")).to_be_disabled()

    # Shift+drag zooms to the range it covers: here the half year around "east".
    x, _ = _mark_center(page, "east")
    span = (_time_at(full, x - 120), _time_at(full, x + 120))
    page.keyboard.down("Shift")
    page.mouse.move(x - 120, y)
    page.mouse.down()
    page.mouse.move(x + 120, y, steps=6)
    page.mouse.up()
    page.keyboard.up("Shift")
    expect(svg).to_have_attribute("data-zoomed", "true")
    chosen = _timeline(page)
    per_px = (full["t1"] - full["t0"]) / full["plot"]
    assert abs(chosen["t0"] - span[0]) <= 2 * per_px and abs(chosen["t1"] - span[1]) <= 2 * per_px
    _readable_ticks(page)
    # The zoom buttons work from the keyboard too: + halves the span around its middle.
    page.focus("#tl-in")
    page.keyboard.press("Enter")
    expect(svg).not_to_have_attribute("data-t0", str(chosen["t0"]))
    halved = _timeline(page)
    assert halved["t1"] - halved["t0"] == pytest.approx((chosen["t1"] - chosen["t0"]) / 2, rel=1e-3)
    console.assert_clean()


# ---------------------------------------------------------------------------------------
# 3. Usable from 768 px wide

#: Rows of buttons that must never overlap, whatever the width.
TOOLBARS = (
    ".topbar",
    ".timeline-bar",
    ".results-head",
    "#sightings .sighting",
    ".detail-actions",
    ".detail-head",
    ".alerts-filters",
    ".panel-head",
    ".rule-actions",
    ".rt-form",
    ".form-actions",
    ".cameras-tools",
)
#: Where times are shown: none may be cut.
DATES = (
    "#sightings .s-line2",
    "#detail-meta dd",
    "#detail-caption",
    "#timeline-span",
    "#alerts .s-line2",
    "#alert-meta dd",
    "#rt-summary",
    "#rt-alerts .s-line2",
    ".rule-meta",
    "#cameras .c-last",
    "#kf-status",
)

#: What is wrong with the page's layout, in words (an empty list when nothing is).
_LAYOUT = """([toolbars, dates]) => {
  const problems = [];
  const say = (text) => problems.push(text);
  const seen = (e) => e.getClientRects().length > 0
    && getComputedStyle(e).visibility !== "hidden";
  const text = (e) => `"${e.textContent.trim()}"`;
  const width = document.documentElement.clientWidth;
  const page = document.documentElement.scrollWidth;
  if (page > width) say(`the page scrolls sideways: ${page} > ${width} px`);
  for (const e of document.querySelectorAll("button, .btn")) {
    const r = e.getBoundingClientRect();
    if (seen(e) && (r.left < -0.5 || r.right > width + 0.5)) {
      say(`button ${text(e)} is off screen (${r.left}..${r.right})`);
    }
  }
  for (const sel of toolbars) {
    for (const bar of document.querySelectorAll(sel)) {
      if (!seen(bar)) continue;
      const buttons = [...bar.querySelectorAll("button, .btn, select")].filter(seen);
      buttons.forEach((p, i) => buttons.slice(i + 1).forEach((q) => {
        const a = p.getBoundingClientRect();
        const b = q.getBoundingClientRect();
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) say(`${sel}: ${text(p)} overlaps ${text(q)}`);
      }));
    }
  }
  for (const sel of dates) {
    for (const e of document.querySelectorAll(sel)) {
      if (!seen(e)) continue;
      if (e.scrollWidth > e.clientWidth + 1) {
        say(`${sel} is cut: ${text(e)} (${e.scrollWidth} > ${e.clientWidth} px)`);
      }
      if (e.getBoundingClientRect().right > width + 0.5) say(`${sel} runs off screen: ${text(e)}`);
    }
  }
  return problems;
}"""


def _layout_problems(page: Page) -> list[str]:
    problems: list[str] = page.evaluate(_LAYOUT, [list(TOOLBARS), list(DATES)])
    return problems


def _assert_usable(console: Console, shot: str) -> None:
    console.shot(shot)
    problems = _layout_problems(console.page)
    assert not problems, f"{shot}:\n" + "\n".join(problems)


def test_console_is_usable_768_px_wide(browser: Browser, trust: TrustWorld, shots: Path) -> None:
    with _console(browser, trust.server, shots, viewport=NARROW) as console:
        page = console.page
        console.login("operator")
        _assert_usable(console, "narrow-start.png")

        _search_by_crop(console, **OWN_TRACKS)
        expect(page.locator("#sightings .sighting")).to_have_count(3)
        _readable_ticks(page)
        _assert_usable(console, "narrow-results.png")
        page.locator("#sightings .sighting").first.locator(".sighting-open").click()
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#detail-meta")).to_contain_text("UTC")
        page.wait_for_function(
            "() => { const i = document.getElementById('detail-image');"
            " return i.complete && i.naturalWidth > 0; }"
        )
        _assert_usable(console, "narrow-detail.png")
        # The detail slides over the list and closes again.
        page.click("#detail-close")
        expect(page.locator("#detail")).to_be_hidden()

        # Local time's longer labels fit too.
        page.click("#zone-local")
        expect(page.locator("#timeline .axis-zone")).to_have_text("local time")
        _readable_ticks(page)
        _assert_usable(console, "narrow-results-local.png")
        page.click("#zone-utc")

        # Alerts: a rule from the first sighting, tested on the year; its form and list.
        page.locator("#sightings .sighting").first.locator(".watch").click()
        expect(page.locator("#rule-form")).to_be_visible()
        _assert_usable(console, "narrow-rule-form.png")
        rule = _create_and_test_rule(page, "the man in the black jacket")
        expect(page.locator("#rt-summary")).to_contain_text("would have been raised")
        expect(page.locator("#rt-summary")).to_contain_text("since 2025-02-28 12:00:00 UTC")
        expect(page.locator("#rt-alerts .rt-alert").first).to_be_visible()
        _assert_usable(console, "narrow-alerts.png")
        rule.locator(".delete").click()
        page.click("#confirm-ok")
        expect(rule).to_have_count(0)

        # Cameras: one with health as `surveil run` writes it, its last frame days ago.
        now = datetime.now(UTC)
        last = now - timedelta(days=3)
        trust.world.services.health.write(
            [CameraHealth("north", "offline", last, 0.0, 0.0, 4, 0, 9, "timed out", now)]
        )
        page.click("#tab-cameras")
        expect(page.locator("#cameras .camera")).to_have_count(3)
        north = page.locator('#cameras .camera[data-id="north"] .c-last time')
        expect(north).to_have_text(shown(last.isoformat()).replace(last.strftime(" %H:%M:%S"), ""))
        expect(north).to_have_attribute("title", shown(last.isoformat(), ms=True))
        _assert_usable(console, "narrow-cameras.png")
        console.assert_clean()


# ---------------------------------------------------------------------------------------
# 4. Files checked before upload


def test_bad_files_are_refused_before_anything_is_sent(
    console: Console, trust: TrustWorld, tmp_path: Path
) -> None:
    page = console.page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    console.login("operator")
    limit = trust.world.settings.api.max_upload_bytes
    me = page.request.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {trust.server.keys['viewer']}"}
    ).json()
    assert me["max_upload_bytes"] == limit  # what the console checks against

    error = page.locator("#crop-error")
    preview = page.locator("#crop-preview")
    # A text file named like a JPEG: its first bytes give it away.
    notes = tmp_path / "notes.jpg"
    notes.write_text("meeting notes, not a picture\n")
    page.set_input_files("#crop-file", notes)
    expect(error).to_be_visible()
    expect(error).to_contain_text('"notes.jpg" is not a JPEG, PNG, WebP or BMP image')
    expect(error).to_contain_text("Nothing was uploaded")
    expect(preview).to_be_hidden()
    expect(page.locator("#query-text")).to_contain_text("No query yet")
    expect(page.locator("#search")).to_be_disabled()
    console.shot("file-not-an-image.png")

    # A real JPEG header on a file over the server's limit: refused by its size, by name.
    big = tmp_path / "whole-frame.jpg"
    big.write_bytes(b"\xff\xd8\xff\xe0" + bytes(limit))
    page.set_input_files("#crop-file", big)
    expect(error).to_contain_text(
        f'"whole-frame.jpg" is {limit + 4:,} bytes, over the server\'s upload limit of '
        f"{limit:,} bytes (2 MB, api.max_upload_bytes)"
    )
    expect(preview).to_be_hidden()

    # Dropped: the same check (the dropped file says it is image/jpeg; its bytes say not).
    text = base64.b64encode(b"GIF89a? no, plain text").decode()
    page.evaluate(_DROP_AND_PASTE, [text, "drop"])
    expect(error).to_contain_text('"dropped.jpg" is not a JPEG, PNG, WebP or BMP image')
    expect(preview).to_be_hidden()

    # Nor does a refused file become a rule example.
    page.click("#tab-alerts")
    page.click("#rule-new")
    expect(page.locator("#rf-examples .rf-example")).to_have_count(0)
    expect(page.locator("#rf-examples-hint")).to_contain_text("No examples yet")
    expect(page.locator("#rf-create")).to_be_disabled()
    page.click("#rf-cancel")
    page.click("#tab-search")
    assert not sent, sent  # not one upload went out

    # A real image passes, whatever it is named: WebP bytes in "crop.png".
    image = cv2.imread(str(trust.world.example_crop))
    assert image is not None
    ok, webp = cv2.imencode(".webp", image)
    assert ok
    crop = tmp_path / "crop.png"
    crop.write_bytes(webp.tobytes())
    page.set_input_files("#crop-file", crop)
    expect(error).to_be_hidden()
    expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    body = _search(console, label="person")
    assert body["sightings"] and max(s["best_score"] for s in body["sightings"]) > 0.9
    console.assert_clean()


# ---------------------------------------------------------------------------------------
# 5. No internal ids in labels

_IDS_SHOWN = """() => {
  const found = [];
  const id = /#\\d/;
  const seen = (e) => e.getClientRects().length > 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (id.test(n.textContent) && seen(n.parentElement)) found.push(n.textContent.trim());
  }
  for (const e of document.querySelectorAll("[aria-label], [title], [alt]")) {
    for (const a of ["aria-label", "title", "alt"]) {
      const v = e.getAttribute(a);
      if (v && id.test(v)) found.push(`${a}="${v}"`);
    }
  }
  return found;
}"""


def _assert_no_ids(page: Page) -> None:
    found: list[str] = page.evaluate(_IDS_SHOWN)
    assert not found, found


def test_labels_name_things_not_internal_ids(console: Console) -> None:
    page = console.page
    console.login("operator")
    _search_by_crop(console, **OWN_TRACKS)
    row = page.locator('#sightings .sighting[data-camera="east"]')
    row.locator(".sighting-open").click()
    best = page.request.get(
        f"/api/v1/appearances/{row.get_attribute('data-appearance')}",
        headers={"Authorization": f"Bearer {console.server.keys['viewer']}"},
    ).json()
    # Named by what, where and when: "this person (east, 12:00:00 UTC)".
    like = f"this person (east, {shown(best['ts'], date=False)})"
    expect(page.locator("#detail-similar")).to_have_text(f"Find similar to {like}")
    expect(page.locator("#detail-watch")).to_have_attribute(
        "title", f"Make {like} an example of a new alert rule"
    )
    _assert_no_ids(page)

    before = console.generation()
    page.click("#detail-similar")
    console.wait_for_results(before)
    expect(page.locator("#query-text")).to_have_text(
        re.compile(
            re.escape(f"Similar to this person (east, {shown(best['ts'])})")
            + r": all \d+ crops? of its track$"
        )
    )
    _assert_no_ids(page)

    # A keyframe and a box drawn on it.
    page.select_option("#kf-camera", "cam09")
    page.click("#kf-load")
    keyframe = page.locator("#keyframes .keyframe:has(.kf-count)").first
    expect(keyframe).to_have_attribute("aria-label", re.compile(r"^Keyframe at 2026-03-01 12:00:"))
    keyframe.click()
    expect(page.locator("#kf-dialog")).to_be_visible()
    expect(page.locator("#kf-dialog-title")).to_contain_text("Keyframe · cam09 · 2026-03-01 12:00:")
    _assert_no_ids(page)
    page.locator("#kf-detections .btn").first.click()
    page.click("#kf-use")
    expect(page.locator("#query-text")).to_have_text(
        re.compile(r"^A \d+×\d+ px box on the cam09 keyframe of 2026-03-01 12:00:\d\d\.\d{3} UTC$")
    )

    # Alerts: a rule watching a sighting, its examples, its test run.
    page.locator("#sightings .sighting").first.locator(".watch").click()
    expect(page.locator("#rf-examples .rf-example")).to_have_count(2)  # the box, the sighting
    _assert_no_ids(page)
    rule = _create_and_test_rule(page, "no ids")
    expect(page.locator("#rt-alerts .rt-alert").first).to_be_visible()
    _assert_no_ids(page)
    rule.locator(".delete").click()
    page.click("#confirm-ok")
    expect(rule).to_have_count(0)
    console.assert_clean()


# ---------------------------------------------------------------------------------------
# 6. Results cut at the limit, and warnings


def test_results_cut_at_the_limit_say_so(console: Console) -> None:
    page = console.page
    console.login("operator")
    notice = page.locator("#truncated")
    body = _search_by_crop(console, limit="5", **{"min-score": "-1"})  # every person
    assert body["truncated"] is True and body["warnings"] == []
    assert body["truncated_reason"] == "limit"
    expect(notice).to_have_attribute("data-reason", "limit")
    assert len(body["sightings"]) == 5  # the limit counts sightings (tracks)
    shown_count = sum(len(s["appearances"]) for s in body["sightings"])
    expect(notice).to_be_visible()
    expect(notice).to_have_text(
        "Showing the first 5 sightings: results were cut at the limit. "
        "Narrow the time range or raise the limit."
    )
    word = "appearance" if shown_count == 1 else "appearances"
    expect(page.locator("#summary")).to_contain_text(f"{shown_count} {word}")
    expect(page.locator("#search-warnings")).to_be_hidden()  # a full answer has no warnings
    _above_results(page, "#truncated")
    console.shot("truncated.png")

    # The whole answer: no notice.
    body = _search(console, limit="500")
    assert body["truncated"] is False and "truncated_reason" not in body
    expect(notice).to_be_hidden()
    console.assert_clean()


def test_a_search_stopped_at_max_candidates_says_so(
    browser: Browser, trust: TrustWorld, shots: Path
) -> None:
    """Fewer sightings than the limit, but the search stopped at its deepest while every
    candidate still matched: the notice says more may exist, and what lifts the cut."""
    with _console(browser, trust.shallow, shots) as console:
        page = console.page
        console.login("operator")
        body = _search_by_crop(console, limit="50", **{"min-score": "-1"})
        assert (body["truncated"], body["truncated_reason"]) == (True, "max_candidates")
        assert len(body["sightings"]) == 10  # search.max_candidates, under the limit
        notice = page.locator("#truncated")
        expect(notice).to_be_visible()
        expect(notice).to_have_attribute("data-reason", "max_candidates")
        expect(notice).to_have_text(
            "Showing the first 10 sightings: the search stopped at its deepest "
            "(search.max_candidates) while candidates still matched, so more may exist. "
            "Narrow the time range or cameras, or ask an admin to raise search.max_candidates."
        )
        _above_results(page, "#truncated")
        console.shot("truncated-max-candidates.png")
        console.assert_clean()


def _above_results(page: Page, selector: str) -> None:
    """`selector` is shown above the timeline and the list."""
    box = page.locator(selector).bounding_box()
    timeline = page.locator(".timeline-box").bounding_box()
    first = page.locator("#sightings .sighting").first.bounding_box()
    assert box and timeline and first
    assert box["y"] + box["height"] <= timeline["y"] <= first["y"], (box, timeline, first)


def test_degraded_server_warns_above_the_results(
    browser: Browser, trust: TrustWorld, shots: Path
) -> None:
    """`detector.backend: motion` asked for: every search says so, the console shows it."""
    expected = trust.degraded_services.warnings()
    assert expected and "motion" in expected[0]
    with _console(browser, trust.degraded, shots) as console:
        page = console.page
        console.login("operator")
        body = _search_by_crop(console)
        assert body["warnings"] == list(expected)
        assert body["sightings"]
        banner = page.locator("#search-warnings")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Warnings about these results")
        items = banner.locator(".search-warning")
        expect(items).to_have_count(len(expected))
        for item, warning in zip(items.all(), body["warnings"], strict=True):
            message = warning if isinstance(warning, str) else warning["message"]
            expect(item).to_contain_text(message)
        expect(items.first).to_contain_text("motion detector in use (detector.backend: motion)")
        _above_results(page, "#search-warnings")
        console.shot("warnings.png")

        # Each answer says its own: the banner follows the next search, and a logout clears it.
        page.click("#logout")
        expect(banner).to_be_hidden()
        console.assert_clean()
    # The full server, same catalog: no banner.
    with _console(browser, trust.server, shots) as console:
        console.login("operator")
        assert _search_by_crop(console)["warnings"] == []
        expect(console.page.locator("#search-warnings")).to_be_hidden()
        console.assert_clean()
