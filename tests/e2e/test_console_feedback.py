"""Operator feedback in the console, in a real browser (Debian's Chromium, Playwright) over
the live server on the ingested world: mark sightings, then "More like the confirmed ones".

Fails on any console error or uncaught page error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api_world import LiveServer
from chromium import console_page
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _generation(page: Page) -> int:
    return int(page.locator("#sightings").get_attribute("data-generation") or "0")


def _wait_results(page: Page, after: int) -> None:
    page.wait_for_function(
        "g => Number(document.getElementById('sightings').dataset.generation) > g", arg=after
    )


def _tracks(page: Page) -> dict[str, float]:
    cards = page.locator("#sightings .sighting")
    return {
        cards.nth(i).get_attribute("data-track") or "": float(
            cards.nth(i).locator(".score").inner_text()
        )
        for i in range(cards.count())
    }


def test_marks_and_reruns_more_like_the_confirmed_ones(
    browser: Browser, live_server: LiveServer, shots: Path
) -> None:
    errors: list[str] = []
    with console_page(browser, live_server.base_url, errors) as page:
        page.fill("#key", live_server.keys["operator"])
        page.click("#login")
        expect(page.locator("#app-view")).to_be_visible()
        page.set_input_files("#crop-file", live_server.example_crop)
        page.fill("#label", "person")
        page.fill("#min-score", "0.3")
        before = _generation(page)
        page.click("#search")
        _wait_results(page, before)
        first = _tracks(page)
        assert len(first) >= 3
        expect(page.locator("#fb-rerun")).to_be_disabled()  # nothing marked yet
        ranked = sorted(first, key=lambda t: -first[t])
        rejected, confirmed = ranked[1], ranked[-1]
        card = page.locator(f'#sightings .sighting[data-track="{rejected}"]')
        card.locator(".fb-rejected").click()
        expect(card.locator(".fb-rejected")).to_have_attribute("aria-pressed", "true")
        low = page.locator(f'#sightings .sighting[data-track="{confirmed}"]')
        low.locator(".fb-confirmed").click()
        expect(low.locator(".fb-confirmed")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#fb-counts")).to_have_text("1 confirmed, 1 rejected")
        expect(page.locator("#detail")).to_be_hidden()  # a verdict does not open the card

        before = _generation(page)
        page.click("#fb-rerun")
        _wait_results(page, before)
        second = _tracks(page)
        assert rejected not in second
        assert second[confirmed] >= 0.99  # a confirmed sighting is now an example
        again = page.locator(f'#sightings .sighting[data-track="{confirmed}"] .fb-confirmed')
        expect(again).to_have_attribute("aria-pressed", "true")  # verdicts stay shown
        page.screenshot(path=shots / "feedback-rerun.png")
    assert not errors, "browser reported errors:\n" + "\n".join(errors)
