"""The console's compare view in a real browser: two crops side by side and the verdict.

Debian's Chromium over the live server (real catalog, real person model): the Market
identity 0001 pair is judged the same, a MOT17-09 person against it not; a viewer key
cannot run a comparison. Fails on any console or page error.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from api_world import LiveServer
from chromium import console_page
from playwright.sync_api import Browser, expect

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MARKET = Path("reid/market1501_person_search_demo/query")
MOT09 = Path("mot/MOT17-mini/train/MOT17-09-FRCNN")


def _mot_person(shared: Path, out: Path) -> Path:
    """The first ground-truth person of MOT17-09, cut from its frame."""
    frame, _ident, x, y, w, h = (
        int(float(v))
        for v in (shared / MOT09 / "gt" / "gt.txt").read_text().split("\n")[0].split(",")[:6]
    )
    image = cv2.imread(str(shared / MOT09 / "img1" / f"{frame:06d}.jpg"))
    assert image is not None
    assert cv2.imwrite(str(out), image[y : y + h, x : x + w])
    return out


def test_console_compares_two_crops_side_by_side(
    browser: Browser, live_server: LiveServer, shared_data: Path, tmp_path: Path
) -> None:
    a, b = sorted((shared_data / MARKET).glob("0001_*.jpg"))
    other = _mot_person(shared_data, tmp_path / "mot09.jpg")
    errors: list[str] = []
    with console_page(browser, live_server.base_url, errors) as page:
        page.fill("#key", live_server.keys["operator"])
        page.click("#login")
        page.click("#compare-open")
        expect(page.locator("#compare-dialog")).to_be_visible()
        page.set_input_files("#compare-file-a", str(a))
        page.set_input_files("#compare-file-b", str(b))
        expect(page.locator("#compare-preview-a")).to_be_visible()
        expect(page.locator("#compare-preview-b")).to_be_visible()
        page.fill("#compare-label", "person")
        page.click("#compare-run")
        result = page.locator("#compare-result")
        expect(result).to_have_attribute("data-same", "true")
        expect(result).to_contain_text("same object likely")
        expect(result).to_contain_text("person space")
        page.set_input_files("#compare-file-b", str(other))
        page.click("#compare-run")
        expect(result).to_have_attribute("data-same", "false")
        expect(result).to_contain_text("same object unlikely")
        page.click("#compare-close")
        expect(page.locator("#compare-dialog")).to_be_hidden()
    with console_page(browser, live_server.base_url, errors) as page:
        page.fill("#key", live_server.keys["viewer"])
        page.click("#login")
        page.click("#compare-open")
        expect(page.locator("#compare-run")).to_be_disabled()
        expect(page.locator("#compare-error")).to_contain_text("needs the operator role")
    assert not errors, errors
