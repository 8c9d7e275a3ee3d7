"""The Alerts side of the operator console in a real browser: Debian's Chromium, driven by
Playwright, over a live server on a catalog of its own (a fresh PostgreSQL database).

Rule examples are real Market-1501 crops embedded by the real person model; appearances
carrying a chosen embedding go in through the catalog's write path, with real crop and
keyframe files so the console can show them; alerts are raised by the same evaluation the
scheduler runs, and webhooks go to a real HTTP receiver on loopback.

Every test fails on any console error or uncaught page error (unhandled rejections
included). Screenshots go to $SURVEIL_TEST_OUTPUT/console (default test-output/).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from api_world import serving
from chromium import TIMEOUT_MS, console_page
from playwright.sync_api import (
    Browser,
    Page,
    expect,
)
from synthetic import T0, model_id, near

from surveil.alerts.model import RuleSpec
from surveil.alerts.notify import WebhookSender
from surveil.alerts.rules import ExampleImage
from surveil.alerts.targets import WebhookPolicy
from surveil.api.app import create_app
from surveil.config import load_settings
from surveil.container import Services, build_services
from surveil.domain import NewAppearance, NewKeyframe
from surveil.jobs.alerting import deliver_due, evaluate_rule
from surveil.storage.migrate import upgrade
from surveil.vision.images import decode_untrusted

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


#: Not UTC: the console still shows and reads times in UTC (its default), whatever the
#: browser's zone.
TIMEZONE = "Europe/Berlin"
MARKET = Path("reid/market1501_person_search_demo")
#: Where the pasted person sits on the synthetic keyframes (x1, y1, x2, y2).
BOX = (400.0, 150.0, 496.0, 342.0)


class Hook:
    """A webhook receiver on loopback that answers 503 to the first `fail_first` POSTs."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.received: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append(body)
                status = 503 if len(hook.received) <= hook.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/surveil"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    """A catalog of its own, served over HTTP, with a key per role and real images."""

    services: Services
    base_url: str
    keys: dict[str, str]
    example: Path  # the crop an operator uploads as a rule example
    crop: bytes  # the same person seen by another camera: stored appearances' crop
    frame: bytes  # a keyframe with that crop pasted in at BOX
    hook: Hook


def _keyframe_image(shared: Path, crop: bytes) -> bytes:
    """A real Market-1501 frame, halved, with the person crop pasted in at BOX."""
    frames = sorted((shared / MARKET / "frames").glob("c3s1_*.jpg"))
    assert frames, f"no Market-1501 frames in {shared / MARKET}"
    frame = cv2.imread(str(frames[-1]))
    person = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None and person is not None
    frame = cv2.resize(frame, (960, 540))
    x1, y1, x2, y2 = (int(v) for v in BOX)
    frame[y1:y2, x1:x2] = cv2.resize(person, (x2 - x1, y2 - y1))
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 88])
    assert ok
    return bytes(data.tobytes())


def store_sightings(
    world: World, camera: str, items: Sequence[tuple[float, np.ndarray]]
) -> list[int]:
    """One keyframe per (seconds after T0, embedding), one person each, with real image files.

    Like synthetic.store_persons (the catalog's write path), plus the crop and keyframe
    files the console shows, and indexed for search as ingest would.
    """
    services = world.services
    tag = uuid.uuid4().hex[:8]
    source = services.catalog.open_source(
        camera_id=camera, uri=f"test://{camera}/{tag}", fingerprint=tag, start=T0, fps=1.0
    )
    batch = []
    for i, (t, vec) in enumerate(items):
        kf_key, crop_key = f"test/{tag}/kf{i}.jpg", f"test/{tag}/crop{i}.jpg"
        services.blobs.put(kf_key, world.frame)
        services.blobs.put(crop_key, world.crop)
        appearance = NewAppearance(
            bbox=BOX,
            label="person",
            confidence=0.9,
            space="person",
            embedding=vec,
            model_id=model_id(services),
            crop_path=crop_key,
        )
        batch.append(
            NewKeyframe(
                camera, source.id, i, T0 + timedelta(seconds=t), 960, 540, kf_key, (appearance,)
            )
        )
    ids = [ids[0] for ids in services.catalog.add_keyframes(batch)]
    services.reconcile_index()  # ingest indexes what it stores; here the catalog leads
    return ids


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, pg_server: str, shared_data: Path
) -> Iterator[World]:
    from conftest import fresh_pg_database

    root = tmp_path_factory.mktemp("console-alerts")
    models = shared_data / "models"
    crops = sorted((shared_data / MARKET / "query").glob("*.jpg"))
    assert len(crops) >= 2, f"need two Market-1501 query crops in {shared_data / MARKET}"
    with pytest.MonkeyPatch.context() as mp, fresh_pg_database(pg_server) as url:
        for key in [k for k in os.environ if k.startswith("SURVEIL_")]:
            mp.delenv(key)
        upgrade(url)
        settings = load_settings(
            overrides={
                "storage.root": str(root / "data"),
                "database.url": url,
                "model_dir": str(models),
                "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
                "api.index_refresh_seconds": 0.0,
                "alerts.webhook_hosts": ["127.0.0.1:*"],  # the receiver is on loopback
            }
        )
        services = build_services(settings)
        hook = Hook(fail_first=1)
        try:
            for cam, name in (("gate", "North gate"), ("yard", "Loading yard")):
                services.catalog.create_camera(camera_id=cam, name=name, url=None)
            keys = {
                r: services.access.create_key(name=f"alerts-{r}", role=r)[1]
                for r in ("viewer", "operator")
            }
            crop = crops[1].read_bytes()
            with serving(create_app(services), name="uvicorn-alerts") as base_url:
                yield World(
                    services,
                    base_url,
                    keys,
                    crops[0],
                    crop,
                    _keyframe_image(shared_data, crop),
                    hook,
                )
        finally:
            hook.close()
            services.close()


@dataclass
class Console:
    """One browser page on the console, with what it logged."""

    page: Page
    world: World
    shots: Path
    errors: list[str] = field(default_factory=list)

    def login(self, role: str) -> None:
        self.page.fill("#key", self.world.keys[role])
        self.page.click("#login")
        expect(self.page.locator("#app-view")).to_be_visible()
        expect(self.page.locator("#who-role")).to_have_text(role)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=self.shots / name)

    def decoded(self, selector: str) -> None:
        """The image is a blob: URL the browser has decoded."""
        expect(self.page.locator(selector)).to_have_attribute("src", re.compile(r"^blob:"))
        self.page.wait_for_function(
            "s => { const i = document.querySelector(s);"
            " return i && i.complete && i.naturalWidth > 0; }",
            arg=selector,
        )

    def assert_clean(self) -> None:
        assert not self.errors, "browser reported errors:\n" + "\n".join(self.errors)


@pytest.fixture
def console(browser: Browser, world: World, shots: Path) -> Iterator[Console]:
    """A fresh console page at the login, in a non-UTC time zone, recording browser errors."""
    errors: list[str] = []
    with console_page(browser, world.base_url, errors, timezone_id=TIMEZONE) as page:
        yield Console(page, world, shots, errors)


def _shown(ts: datetime) -> str:
    """A date field's value for `ts` in the zone the console shows by default, UTC."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _refresh_badge(page: Page) -> None:
    """The badge counts every 15 s; switching to the Alerts view counts at once."""
    page.click("#tab-search")
    page.click("#tab-alerts")
    expect(page.locator("#alerts-view")).to_be_visible()


def test_operator_creates_rule_gets_alert_and_tunes_it(console: Console) -> None:
    page, world = console.page, console.world
    services = world.services
    console.login("operator")
    expect(page.locator("#alert-badge")).to_be_hidden()  # nothing raised yet

    # The example: the crop chosen in the Search view.
    page.set_input_files("#crop-file", world.example)
    expect(page.locator("#query-text")).to_contain_text(world.example.name)
    page.click("#tab-alerts")
    expect(page.locator("#alerts-view")).to_be_visible()
    expect(page.locator("#search-view")).to_be_hidden()
    expect(page.locator("#tab-alerts")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#rules .rule")).to_have_count(0)
    expect(page.locator("#alerts-summary")).to_have_text("No alerts yet.")

    page.click("#rule-new")
    form = page.locator("#rule-form")
    expect(form).to_be_visible()
    expect(page.locator("#rf-name")).to_be_focused()
    expect(page.locator("#rf-threshold")).to_have_value("0.75")
    examples = page.locator("#rf-examples .rf-example")
    expect(examples).to_have_count(1)
    expect(examples.first).to_have_attribute("data-kind", "image")
    expect(examples.first).to_contain_text(world.example.name)
    expect(page.locator('#rf-cameras input[value="yard"]')).to_be_visible()

    # A missing name is refused before anything is sent.
    page.click("#rf-create")
    expect(page.locator("#error")).to_contain_text("Give the rule a name")

    page.fill("#rf-name", "woman in white")
    page.fill("#rf-label", "person")
    page.check('#rf-cameras input[value="gate"]')
    page.fill("#rf-interval", "30")
    page.fill("#rf-webhooks", world.hook.url)
    page.fill("#rf-secret", "s3cret-for-signing-hooks")
    console.shot("rule-form.png")
    page.click("#rf-create")
    rule = page.locator("#rules .rule")
    expect(rule).to_have_count(1, timeout=TIMEOUT_MS)  # the example is embedded first
    expect(page.locator("#error")).to_be_hidden()
    expect(form).to_be_hidden()
    rule_id = int(rule.get_attribute("data-id") or "0")
    expect(rule).to_have_attribute("data-enabled", "true")
    expect(rule.locator(".rule-name")).to_have_text("woman in white")
    expect(rule.locator(".rule-threshold")).to_have_text("≥ 0.75")
    expect(rule.locator(".rule-meta")).to_contain_text("gate · person · every 30 s")
    expect(rule.locator(".rule-meta")).to_contain_text("1 webhook (signed)")
    console.decoded(f'#rules .rule[data-id="{rule_id}"] .rule-example')
    stored = services.alerts.get_rule(rule_id)
    assert stored.spec.cameras == ("gate",) and stored.spec.secret is not None
    assert stored.space == "person" and len(stored.examples) == 1

    # Footage arrives: the person on the gate camera (three close hits: one alert), the
    # same person on a camera the rule does not watch, and a stranger.
    target = services.alerts.example_vectors(rule_id)[0]
    store_sightings(world, "gate", [(0, target), (2, near(target, 0.95, 7)), (4, target)])
    store_sightings(world, "yard", [(0, target)])
    store_sightings(world, "gate", [(600, near(target, 0.3, 8))])
    report = evaluate_rule(services.alerts, rule_id, batch=100)
    assert (report.scanned, report.hits, report.new_alerts) == (4, 3, 1)
    sender = WebhookSender(timeout=5.0, policy=WebhookPolicy(["127.0.0.1:*"]))
    try:
        settings = services.settings.alerts
        assert deliver_due(services.alerts, sender, settings)["retrying"] == 1  # 503 first
        later = datetime.now(UTC) + timedelta(hours=1)
        assert deliver_due(services.alerts, sender, settings, clock=lambda: later) == {
            "delivered": 1,
            "retrying": 0,
            "failed": 0,
        }
    finally:
        sender.close()

    _refresh_badge(page)
    expect(page.locator("#alert-badge")).to_have_text("1")
    expect(page.locator("#tab-alerts")).to_have_attribute("aria-label", "Alerts, 1 unacknowledged")
    alert = page.locator("#alerts .alert")
    expect(alert).to_have_count(1)
    expect(alert).to_have_attribute("data-rule", str(rule_id))
    expect(alert).to_have_attribute("data-camera", "gate")
    expect(alert).to_contain_text("woman in white")
    expect(alert).to_contain_text("3 hits")
    expect(alert.locator(".a-state")).to_have_text("new")
    expect(alert.locator(".score")).to_have_text("1.00")
    console.decoded("#alerts .alert img.thumb")

    # The detail: crop, keyframe with the box, facts, both webhook attempts.
    alert.locator(".alert-open").click()
    detail = page.locator("#alert-detail")
    expect(detail).to_be_visible()
    expect(alert).to_have_class(re.compile(r"\bselected\b"))
    console.decoded("#alert-crop")
    console.decoded("#alert-keyframe")
    box = page.locator("#alert-keyframe").get_attribute("data-src") or ""
    assert box.endswith("?box=400,150,496,342"), box
    meta = page.locator("#alert-meta")
    expect(meta).to_contain_text("woman in white")
    expect(meta).to_contain_text("not yet")
    attempts = page.locator("#alert-deliveries .attempt")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("HTTP 503")
    expect(attempts.nth(1)).to_contain_text("HTTP 200")
    expect(page.locator("#alert-deliveries .d-state")).to_have_text("delivered")
    console.shot("alerts.png")

    # Acknowledge: the row, the detail and the badge follow.
    ack = detail.locator(".ack")
    expect(ack).to_be_enabled()
    ack.click()
    expect(page.locator("#alert-ack-state")).to_contain_text("by alerts-operator")
    expect(ack).to_be_disabled()
    expect(alert).to_have_class(re.compile(r"\backed\b"))
    expect(alert.locator(".ack")).to_have_count(0)
    expect(page.locator("#alert-badge")).to_be_hidden()
    [stored_alert] = services.alerts.list_alerts(rule_id=rule_id)
    assert stored_alert.acknowledged_by == "alerts-operator"
    page.check("#alerts-unacked")
    expect(page.locator("#alerts .alert")).to_have_count(0)
    expect(page.locator("#alerts-summary")).to_have_text("No alerts match the filters.")
    page.uncheck("#alerts-unacked")
    expect(page.locator("#alerts .alert")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # Test the rule on past footage, then tune its threshold from there.
    page.locator(f'#rules .rule[data-id="{rule_id}"] .test').click()
    panel = page.locator("#rule-test")
    expect(panel).to_be_visible()
    expect(page.locator("#rt-threshold")).to_have_value("0.75")
    page.fill("#rt-since", _shown(T0 - timedelta(hours=1)))
    page.click("#rt-run")
    summary = page.locator("#rt-summary")
    expect(summary).to_contain_text("1 alert would have been raised")
    expect(summary).to_contain_text("4 appearances scanned")  # the rule watches gate only
    expect(summary).to_contain_text("3 hits at ≥ 0.75")
    scores = page.locator("#rt-scores .rt-score")
    expect(scores).to_have_count(4)
    assert scores.all_inner_texts() == ["1.000", "1.000", "0.950", "0.300"]
    expect(page.locator("#rt-scores .rt-score.pass")).to_have_count(3)
    expect(page.locator("#rt-alerts .rt-alert")).to_have_count(1)
    console.decoded("#rt-alerts .rt-thumb")
    page.fill("#rt-threshold", "0.99")  # the chips show at once what a new threshold keeps
    expect(page.locator("#rt-scores .rt-score.pass")).to_have_count(2)
    console.shot("rule-test.png")
    page.click("#rt-save")
    expect(summary).to_contain_text("2 hits at ≥ 0.99")
    expect(page.locator(f'#rules .rule[data-id="{rule_id}"] .rule-threshold')).to_have_text(
        "≥ 0.99"
    )
    assert services.alerts.get_rule(rule_id).spec.threshold == pytest.approx(0.99)
    assert len(services.alerts.list_alerts(rule_id=rule_id)) == 1  # a test stores nothing

    # Find similar from the alert: the Search view runs a search by its appearance.
    alert.locator(".alert-open").click()
    expect(page.locator("#alert-similar")).to_be_enabled()
    before = int(page.locator("#sightings").get_attribute("data-generation") or "0")
    page.click("#alert-similar")
    expect(page.locator("#search-view")).to_be_visible()
    expect(page.locator("#tab-search")).to_have_attribute("aria-selected", "true")
    [best] = services.catalog.appearances([stored_alert.appearance_id])
    expect(page.locator("#query-text")).to_have_text(
        f"Similar to this person (gate, {best.ts.strftime('%Y-%m-%d %H:%M:%S')} UTC)"
    )
    page.wait_for_function(
        "g => Number(document.getElementById('sightings').dataset.generation) > g", arg=before
    )
    sightings = page.locator("#sightings .sighting")
    cameras = set(sightings.evaluate_all("els => els.map(e => e.dataset.camera)"))
    assert {"gate", "yard"} <= cameras, cameras

    # "Watch for this" on a sighting: a second rule from a stored appearance.
    yard = page.locator('#sightings .sighting[data-camera="yard"]').first
    yard.locator(".watch").click()
    expect(page.locator("#alerts-view")).to_be_visible()
    expect(form).to_be_visible()
    watched = page.locator('#rf-examples .rf-example[data-kind="appearance"]')
    expect(watched.first).to_be_visible()
    ids = set(watched.evaluate_all("els => els.map(e => Number(e.dataset.id))"))
    page.fill("#rf-name", "seen in the yard")
    page.click("#rf-create")
    expect(page.locator("#rules .rule")).to_have_count(2, timeout=TIMEOUT_MS)
    second = next(r for r in services.alerts.list_rules() if r.spec.name == "seen in the yard")
    assert len(second.examples) == len(ids) >= 1

    # Disable, then delete (a cancelled confirmation deletes nothing).
    first = page.locator(f'#rules .rule[data-id="{rule_id}"]')
    first.locator(".toggle").click()
    expect(first).to_have_attribute("data-enabled", "false")
    expect(first.locator(".pill")).to_have_text("disabled")
    expect(first.locator(".toggle")).to_be_focused()
    assert services.alerts.get_rule(rule_id).spec.enabled is False
    first.locator(".delete").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("woman in white")
    page.click("#confirm-cancel")
    expect(dialog).to_be_hidden()
    expect(page.locator("#rules .rule")).to_have_count(2)
    first.locator(".delete").click()
    page.click("#confirm-ok")
    expect(page.locator("#rules .rule")).to_have_count(1)
    expect(page.locator("#alerts .alert")).to_have_count(0)  # its alerts went with it
    page.locator(f'#rules .rule[data-id="{second.id}"] .delete').click()
    page.click("#confirm-ok")
    expect(page.locator("#rules .rule")).to_have_count(0)
    expect(page.locator("#rule-new")).to_be_focused()
    assert services.alerts.list_rules() == []
    console.assert_clean()


def test_viewer_reads_alerts_but_cannot_change_anything(console: Console) -> None:
    page, world = console.page, console.world
    services = world.services
    data = world.example.read_bytes()
    image = decode_untrusted(data, max_pixels=4_000_000)
    spec = RuleSpec(name="watched by viewers", threshold=0.8, labels=("person",))
    rule = services.rules().create(spec, [ExampleImage(image, data)], created_by="fixture")
    try:
        target = services.alerts.example_vectors(rule.id)[0]
        store_sightings(world, "yard", [(30, target)])
        assert evaluate_rule(services.alerts, rule.id, batch=100).new_alerts == 1

        console.login("viewer")
        expect(page.locator("#alert-badge")).to_have_text("1")  # counted at log-in
        # The tabs work from the keyboard.
        page.focus("#tab-search")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#alerts-view")).to_be_visible()
        expect(page.locator("#tab-alerts")).to_be_focused()

        expect(page.locator("#rule-new")).to_be_disabled()
        expect(page.locator("#rules-hint")).to_contain_text("viewer key")
        item = page.locator(f'#rules .rule[data-id="{rule.id}"]')
        for action in ("toggle", "test", "delete"):
            expect(item.locator(f".{action}")).to_be_disabled()
        expect(item.locator(".show-alerts")).to_be_enabled()
        console.decoded(f'#rules .rule[data-id="{rule.id}"] .rule-example')

        alert = page.locator("#alerts .alert")
        expect(alert).to_have_count(1)
        expect(alert).to_have_attribute("data-rule", str(rule.id))
        expect(alert).to_have_attribute("data-camera", "yard")
        expect(alert.locator(".ack")).to_be_disabled()
        alert.locator(".alert-open").focus()
        page.keyboard.press("Enter")
        detail = page.locator("#alert-detail")
        expect(detail).to_be_visible()
        console.decoded("#alert-crop")
        console.decoded("#alert-keyframe")
        expect(detail.locator(".ack")).to_be_disabled()
        expect(page.locator("#alert-similar")).to_be_disabled()
        expect(page.locator("#alert-hint")).to_contain_text("operator role")
        expect(page.locator("#alert-deliveries")).to_contain_text("logged only")
        console.shot("alerts-viewer.png")
        page.keyboard.press("Escape")
        expect(detail).to_be_hidden()

        # Filter by rule from the rule's own button.
        item.locator(".show-alerts").click()
        expect(page.locator("#alerts-rule")).to_have_value(str(rule.id))
        expect(alert).to_have_count(1)
        assert services.alerts.list_alerts(rule_id=rule.id)[0].acknowledged_at is None
        # A reload keeps the key and the view.
        page.reload()
        expect(page.locator("#alerts-view")).to_be_visible()
        expect(page.locator("#alerts .alert")).to_have_count(1)

        # A new alert shows up by itself: the badge polls every 15 s and the list follows.
        store_sightings(world, "yard", [(3600, target)])  # well past the cooldown
        assert evaluate_rule(services.alerts, rule.id, batch=100).new_alerts == 1
        expect(page.locator("#alert-badge")).to_have_text("2", timeout=25_000)
        expect(page.locator("#alerts .alert")).to_have_count(2)
        console.assert_clean()
    finally:
        services.rules().delete(rule.id)
