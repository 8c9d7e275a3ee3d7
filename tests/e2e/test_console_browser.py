"""The operator console in a real browser: Debian's Chromium, driven by Playwright, over the
live server (real PostgreSQL catalog ingested from real video, real models).

Every test also fails on any console error or uncaught page error (unhandled promise
rejections included); only the HTTP errors a test provokes on purpose are allowed, by
status and path. Screenshots go to $SURVEIL_TEST_OUTPUT/console (default test-output/).
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from api_world import LiveServer
from chromium import console_page
from playwright.sync_api import (
    Browser,
    Page,
    expect,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Console:
    """One browser page on the console, with what it logged."""

    page: Page
    server: LiveServer
    shots: Path
    errors: list[str] = field(default_factory=list)

    def login(self, role: str) -> None:
        self.page.fill("#key", self.server.keys[role])
        self.page.click("#login")
        expect(self.page.locator("#app-view")).to_be_visible()
        expect(self.page.locator("#who-role")).to_have_text(role)

    def generation(self) -> int:
        """How many searches have rendered results so far."""
        return int(self.page.locator("#sightings").get_attribute("data-generation") or "0")

    def wait_for_results(self, after: int) -> None:
        self.page.wait_for_function(
            "g => Number(document.getElementById('sightings').dataset.generation) > g", arg=after
        )

    def shot(self, name: str) -> None:
        self.page.screenshot(path=self.shots / name)

    def assert_clean(self, *allowed: tuple[int, str]) -> None:
        """No console errors and no uncaught errors, but for (status, path) HTTP failures."""

        def expected(message: str) -> bool:
            return any(
                f"status of {status} " in message and message.rstrip().endswith(path)
                for status, path in allowed
            )

        unexpected = [m for m in self.errors if not expected(m)]
        assert not unexpected, "browser reported errors:\n" + "\n".join(unexpected)


@pytest.fixture
def console(browser: Browser, live_server: LiveServer, shots: Path) -> Iterator[Console]:
    """A fresh console page at the login, recording what the browser reports."""
    errors: list[str] = []
    with console_page(browser, live_server.base_url, errors) as page:
        yield Console(page, live_server, shots, errors)


def _scores(page: Page) -> list[float]:
    return [float(t) for t in page.locator("#sightings .sighting .score").all_inner_texts()]


def _check_results(page: Page) -> int:
    """The list, the summary and the timeline agree; returns the number of sightings."""
    cards = page.locator("#sightings .sighting")
    expect(cards.first).to_be_visible()
    n = cards.count()
    assert n >= 1
    cameras = {cards.nth(i).get_attribute("data-camera") for i in range(n)}
    summary = page.locator("#summary").inner_text()
    match = re.search(r"(\d+) sightings? across (\d+) cameras?", summary)
    assert match, summary
    assert (int(match[1]), int(match[2])) == (n, len(cameras))
    lanes = page.locator("#timeline .lane")
    lane_cameras = {lanes.nth(i).get_attribute("data-camera") for i in range(lanes.count())}
    assert lane_cameras == cameras  # one lane per camera with sightings
    assert page.locator("#timeline .mark").count() == n  # one mark per sighting
    labels = set(page.locator("#timeline .lane-label").all_text_contents())
    assert all(str(c) in labels for c in cameras), labels
    assert page.locator("#timeline .axis text").count() >= 2  # tick labels on the time axis
    # Every visible row shows its best crop, fetched with the key and shown as a blob.
    expect(cards.first.locator("img.thumb")).to_have_attribute("src", re.compile(r"^blob:"))
    return n


def test_operator_searches_by_uploaded_crop(console: Console) -> None:
    page = console.page
    console.login("operator")
    expect(page.locator("#search")).to_be_disabled()  # nothing to search by yet

    page.set_input_files("#crop-file", console.server.example_crop)
    expect(page.locator("#crop-preview")).to_have_attribute("src", re.compile(r"^blob:"))
    expect(page.locator("#query-text")).to_contain_text("Example crop")
    page.fill("#label", "person")  # the example is a person: search the re-id space
    before = console.generation()
    page.click("#search")
    console.wait_for_results(before)
    n = _check_results(page)
    # The example is a stored crop: its own appearance comes back with a score of ~1.
    assert max(_scores(page)) >= 0.99
    console.shot("search.png")

    first = page.locator("#sightings .sighting").first
    first.click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(first).to_have_class(re.compile(r"\bselected\b"))
    image = page.locator("#detail-image")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function(
        "() => { const i = document.getElementById('detail-image');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    camera = first.get_attribute("data-camera")
    expect(detail.locator("#detail-meta")).to_contain_text(str(camera))
    stated = re.search(r"(\d+) appearances?", first.inner_text())
    assert stated, first.inner_text()
    expect(detail.locator("#detail-appearances .appearance")).to_have_count(int(stated[1]))
    console.shot("detail.png")

    # A timeline mark selects its sighting too, by mouse and by keyboard.
    for mark, by_keyboard in (
        (page.locator("#timeline .mark").last, False),
        (page.locator("#timeline .mark").first, True),
    ):
        if by_keyboard:
            mark.focus()
            page.keyboard.press("Enter")
        else:
            mark.click()
        expect(mark).to_have_class(re.compile(r"\bselected\b"))
        index = mark.get_attribute("data-index")
        expect(page.locator(f'#sightings .sighting[data-index="{index}"]')).to_have_class(
            re.compile(r"\bselected\b")
        )
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # Find similar: a new search by that sighting's whole track replaces the results.
    before = console.generation()
    first = page.locator("#sightings .sighting").first
    track = first.get_attribute("data-track")
    crops = first.locator(".s-count").inner_text().split()[0]
    first.locator(".find-similar").click()
    console.wait_for_results(before)
    expect(page.locator("#query-text")).to_contain_text("Similar to this person (")
    expect(page.locator("#query-text")).to_contain_text(f": all {crops} crop")
    expect(detail).to_be_hidden()
    assert _check_results(page) >= 1
    own = page.locator(f'#sightings .sighting[data-track="{track}"] .score')
    assert float(own.inner_text()) == max(_scores(page))  # the track finds itself first
    assert n >= 1
    console.assert_clean()


def test_operator_draws_a_box_on_a_keyframe(console: Console) -> None:
    page = console.page
    console.login("operator")
    page.select_option("#kf-camera", "lobby")
    page.click("#kf-load")
    with_people = page.locator("#keyframes .keyframe:has(.kf-count)")
    expect(with_people.first).to_be_visible()
    keyframe_id = with_people.first.get_attribute("data-id")
    with_people.first.click()

    dialog = page.locator("#kf-dialog")
    expect(dialog).to_be_visible()
    response = page.request.get(
        f"/api/v1/keyframes/{keyframe_id}",
        headers={"Authorization": f"Bearer {console.server.keys['operator']}"},
    )
    assert response.ok, response.text()
    keyframe: dict[str, Any] = response.json()
    target = max(keyframe["appearances"], key=lambda a: a["confidence"])
    x1, y1, x2, y2 = target["bbox"]

    # Draw the detected person's box by mouse, in screen coordinates of the scaled canvas.
    page.wait_for_function(
        "() => document.getElementById('kf-canvas').width > 16"
    )  # the image is drawn
    rect = page.locator("#kf-canvas").bounding_box()
    assert rect is not None
    sx = rect["width"] / keyframe["width"]
    sy = rect["height"] / keyframe["height"]
    page.mouse.move(rect["x"] + x1 * sx, rect["y"] + y1 * sy)
    page.mouse.down()
    page.mouse.move(rect["x"] + x2 * sx, rect["y"] + y2 * sy, steps=8)
    page.mouse.up()
    shown = page.locator("#kf-box").inner_text()
    drawn = [int(v) for v in re.findall(r"\d+", shown)[:4]]
    # Canvas pixels map back to keyframe pixels (a screen pixel is ~1/scale image pixels).
    tolerance = 2 / min(sx, sy) + 1
    assert all(abs(a - b) <= tolerance for a, b in zip(drawn, (x1, y1, x2, y2), strict=True)), (
        drawn,
        target["bbox"],
    )
    console.shot("keyframe-box.png")
    page.click("#kf-use")
    expect(dialog).to_be_hidden()
    expect(page.locator("#query-text")).to_contain_text(
        f"px box on the lobby keyframe of {keyframe['ts'][:10]} {keyframe['ts'][11:23]} UTC"
    )

    page.check('#camera-filter input[value="lobby"]')
    before = console.generation()
    page.click("#search")
    console.wait_for_results(before)
    _check_results(page)
    cameras = page.locator("#sightings .sighting").evaluate_all(
        "els => [...new Set(els.map(e => e.dataset.camera))]"
    )
    assert cameras == ["lobby"]  # the camera filter went along
    # The box is (nearly) the detection itself: the sighting spanning that keyframe is found,
    # with a high score.
    spans = page.locator("#sightings .sighting").evaluate_all(
        "els => els.map(e => [e.dataset.first, e.dataset.last])"
    )
    assert any(first <= keyframe["ts"] <= last for first, last in spans), (keyframe["ts"], spans)
    assert max(_scores(page)) >= 0.8
    console.shot("keyframe-search.png")
    console.assert_clean()


def test_wrong_or_revoked_key_stays_on_login(console: Console) -> None:
    page = console.page
    for key in ("sk-not-a-real-key", console.server.keys["revoked"]):
        page.fill("#key", key)
        page.click("#login")
        error = page.locator("#login-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("not accepted")
        expect(page.locator("#login-view")).to_be_visible()
        expect(page.locator("#app-view")).to_be_hidden()
        assert page.evaluate("sessionStorage.length") == 0
    console.shot("login-error.png")
    console.assert_clean((401, "/api/v1/me"))


def test_viewer_browses_but_cannot_search(console: Console) -> None:
    page = console.page
    console.login("viewer")
    search = page.locator("#search")
    expect(search).to_be_disabled()
    expect(page.locator("#search-hint")).to_contain_text("operator role")
    page.set_input_files("#crop-file", console.server.example_crop)
    expect(page.locator("#crop-preview")).to_be_visible()
    expect(search).to_be_disabled()  # a query does not lift the role limit
    # A viewer may still browse a camera's keyframes.
    page.select_option("#kf-camera", "cam09")
    page.click("#kf-load")
    thumb = page.locator("#keyframes .keyframe img").first
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    thumb.evaluate("img => img.decode()")
    console.shot("viewer.png")

    # The key survives a reload (sessionStorage), and logging out forgets it.
    page.reload()
    expect(page.locator("#who-role")).to_have_text("viewer")
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    console.assert_clean()


def test_api_error_envelope_is_shown(console: Console) -> None:
    page = console.page
    console.login("operator")
    page.set_input_files("#crop-file", console.server.example_crop)
    page.fill("#limit", "100000")  # over api.max_results: the API answers 400 invalid_input
    page.click("#search")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("limit must be between 1 and")
    expect(error).to_contain_text("invalid input")
    expect(page.locator("#search")).to_be_enabled()  # ready to try again
    console.assert_clean((400, "/api/v1/search"))


#: Builds a File from base64 in the page and hands it over the way a browser would.
_DROP_AND_PASTE = """([data, how]) => {
  const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
  if (how === "drop") {
    const zone = document.getElementById("drop-zone");
    zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true,
                                                  cancelable: true}));
    zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true,
                                              cancelable: true}));
  } else {
    document.body.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer,
                                                             bubbles: true, cancelable: true}));
  }
}"""


def test_crop_by_drop_and_paste(console: Console) -> None:
    page = console.page
    console.login("operator")
    data = base64.b64encode(console.server.example_crop.read_bytes()).decode()
    page.evaluate(_DROP_AND_PASTE, [data, "drop"])
    expect(page.locator("#query-text")).to_contain_text("dropped.jpg")
    expect(page.locator("#crop-preview")).to_have_attribute("src", re.compile(r"^blob:"))
    page.evaluate(_DROP_AND_PASTE, [data, "paste"])
    expect(page.locator("#query-text")).to_contain_text("pasted.jpeg")
    page.fill("#label", "person")
    before = console.generation()
    page.click("#search")
    console.wait_for_results(before)
    _check_results(page)
    assert max(_scores(page)) >= 0.99  # the pasted bytes are the stored crop
    console.assert_clean()


def test_path_across_cameras_reads_in_time_order(console: Console) -> None:
    """With no floor the lobby person's search reaches cam09 too: the path shows both."""
    page = console.page
    console.login("operator")
    page.set_input_files("#crop-file", console.server.example_crop)
    page.fill("#label", "person")
    page.fill("#min-score", "-1")
    before = console.generation()
    page.click("#search")
    console.wait_for_results(before)
    _check_results(page)
    box = page.locator("#path-box")
    expect(box).to_be_visible()
    legs, hops = box.locator(".leg"), box.locator(".hop")
    cameras = [legs.nth(i).get_attribute("data-camera") for i in range(legs.count())]
    assert {"lobby", "cam09"} <= set(cameras)
    assert all(a != b for a, b in itertools.pairwise(cameras))  # a leg per change
    assert hops.count() == legs.count() - 1
    expect(hops.first).to_have_text(re.compile(r"^→ (\+\d|overlaps|at once)"))
    # The lobby video ends minutes before cam09 starts: nothing overlaps, no warning.
    expect(page.locator("#path-warning")).to_be_hidden()
    assert box.locator(".leg.overlap").count() == 0
    # A leg opens its first sighting.
    legs.last.locator(".leg-open").click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-title")).to_contain_text(str(cameras[-1]))
    console.assert_clean()


def test_re_rank_choice_is_sent_and_timed(console: Console) -> None:
    """The console's Re-rank choice reaches the search: the server times a rerank stage
    only when asked (search.rerank.mode is off here, so "default" does not re-rank)."""
    page = console.page
    console.login("operator")
    page.set_input_files("#crop-file", console.server.example_crop)
    page.fill("#label", "person")

    def rerank_ms(choice: str) -> float:
        page.select_option("#rerank", choice)
        before = console.generation()
        with page.expect_response(re.compile(r"/api/v1/search$")) as answer:
            page.click("#search")
        console.wait_for_results(before)
        _check_results(page)
        timing = re.search(r"rerank;dur=([\d.]+)", answer.value.headers["server-timing"])
        assert timing, answer.value.headers["server-timing"]
        return float(timing[1])

    assert rerank_ms("true") > 0
    assert rerank_ms("") == 0
    console.assert_clean()
