"""Every search attempt is audited, whoever made it and however it ended (issue 9, item 4).

A real catalog (SQLite, then PostgreSQL for the upload count), the real app over
TestClient, the real `surveil` CLI in a subprocess; one test per way a search ends.
"""

from __future__ import annotations

import getpass
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cli_process import run_cli
from fastapi.testclient import TestClient
from structlog.testing import capture_logs
from synthetic import make_rule

from surveil.api.app import create_app
from surveil.config import load_settings
from surveil.container import Services, build_services
from surveil.domain import AuditEntry
from surveil.storage.migrate import upgrade

MAX_UPLOAD = 300_000
MAX_PIXELS = 1_000_000


@dataclass
class World:
    services: Services
    client: TestClient
    keys: dict[str, str]
    crop: bytes
    url: str
    models: Path

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def search(self, role: str = "operator", **form: Any) -> Any:
        files = form.pop("files", None)
        return self.client.post("/api/v1/search", headers=self.auth(role), data=form, files=files)

    def trail(self, action: str = "search") -> list[AuditEntry]:
        return self.services.access.audit_entries(action=action, limit=1000)

    def last(self, action: str = "search") -> AuditEntry:
        return self.trail(action)[0]


def _build(root: Path, url: str, models: Path, crop: bytes) -> Iterator[World]:
    for key in [k for k in os.environ if k.startswith("SURVEIL_")]:
        del os.environ[key]
    upgrade(url)
    settings = load_settings(
        overrides={
            "storage.root": str(root / "data"),
            "database.url": url,
            "model_dir": str(models),
            "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
            "api.max_upload_bytes": MAX_UPLOAD,
            "api.max_image_pixels": MAX_PIXELS,
            "api.console": False,
        }
    )
    services = build_services(settings)
    keys = {r: services.access.create_key(name=f"t-{r}", role=r)[1] for r in ("viewer", "operator")}
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield World(services, client, keys, crop, url, models)
    finally:
        services.close()


def _crop(shared_data: Path) -> bytes:
    query = shared_data / "reid" / "market1501_person_search_demo" / "query"
    crops = sorted(query.glob("*.jpg"))
    assert crops, f"no Market-1501 query crops in {query}"
    return crops[0].read_bytes()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("search-audit")
    url = f"sqlite:///{(root / 'catalog.db').as_posix()}"
    yield from _build(root, url, shared_data / "models", _crop(shared_data))


def _refused(world: World, response: Any, status: int, role: str = "operator") -> AuditEntry:
    """The one row the refused attempt left: key, client, outcome and reason."""
    assert response.status_code == status, response.text
    entry = world.last()
    e = entry.entry
    assert (e.status, e.key_name, e.role) == ("refused", f"t-{role}", role)
    assert e.client and e.detail and e.detail.startswith(f"HTTP {status}: ")
    assert response.json()["error"]["message"] in e.detail
    return entry


def _one_more(world: World, send: Any) -> tuple[Any, AuditEntry]:
    before = len(world.trail())
    response = send()
    assert len(world.trail()) == before + 1, "exactly one audit row per attempt"
    return response, world.last()


def test_403_a_viewer_search_is_audited_with_its_filters(world: World) -> None:
    response, _ = _one_more(world, lambda: world.search("viewer", camera="lobby", limit="5"))
    entry = _refused(world, response, 403, role="viewer")
    assert entry.entry.filters == {"camera": "lobby", "limit": "5"}


def test_400_bad_since_is_audited(world: World) -> None:
    response, _ = _one_more(world, lambda: world.search(appearance_id="1", since="yesterday"))
    entry = _refused(world, response, 400)
    assert "since" in (entry.entry.detail or "") and entry.entry.filters["since"] == "yesterday"


def test_400_limit_5000_is_audited(world: World) -> None:
    response, _ = _one_more(world, lambda: world.search(appearance_id="1", limit="5000"))
    entry = _refused(world, response, 400)
    assert "limit" in (entry.entry.detail or "") and entry.entry.filters["limit"] == "5000"


def test_400_two_queries_at_once_is_audited(world: World) -> None:
    send = lambda: world.search(appearance_id="1", keyframe_id="2", box="0,0,9,9")  # noqa: E731
    response, _ = _one_more(world, send)
    entry = _refused(world, response, 400)
    assert entry.entry.filters == {"appearance_id": "1", "keyframe_id": "2", "box": "0,0,9,9"}


def test_404_an_unknown_appearance_is_audited(world: World) -> None:
    response, _ = _one_more(world, lambda: world.search(appearance_id="999999999"))
    entry = _refused(world, response, 404)
    assert entry.entry.appearance_id == 999999999 and entry.entry.query_kind == "appearance"


def test_413_a_body_over_the_limit_is_audited_under_its_key(world: World) -> None:
    big = {"image": ("big.jpg", b"\xff\xd8" + b"0" * MAX_UPLOAD, "image/jpeg")}
    response, _ = _one_more(world, lambda: world.search(files=big))
    _refused(world, response, 413)


def test_415_a_text_file_named_jpg_is_audited(world: World) -> None:
    text = {"image": ("crop.jpg", b"hello, not an image", "image/jpeg")}
    response, _ = _one_more(world, lambda: world.search(files=text, camera="lobby"))
    entry = _refused(world, response, 415)
    assert entry.entry.filters["camera"] == "lobby"
    assert "crop.jpg" in str(entry.entry.filters["image"])  # the file by name and size, no bytes


def test_422_an_image_too_large_in_pixels_is_audited(world: World) -> None:
    ok, png = cv2.imencode(".png", np.zeros((1001, 1000, 3), np.uint8))
    assert ok and png.nbytes < MAX_UPLOAD
    files = {"image": ("huge.png", io.BytesIO(png.tobytes()), "image/png")}
    response, _ = _one_more(world, lambda: world.search(files=files))
    _refused(world, response, 422)


def test_a_form_fastapi_cannot_validate_is_audited(world: World) -> None:
    response, entry = _one_more(world, lambda: world.search(appearance_id="1", limit="many"))
    assert response.status_code in (400, 422)
    assert entry.entry.status == "refused" and entry.entry.filters["limit"] == "many"


def test_401_is_counted_and_logged_but_not_audited(world: World) -> None:
    metrics = world.client.app.state.metrics  # type: ignore[attr-defined]

    def count() -> float:
        value = metrics.registry.get_sample_value(
            "surveil_http_unauthenticated_total", {"route": "/api/v1/search"}
        )
        return float(value or 0)

    before, rows = count(), len(world.trail())
    with capture_logs() as logs:
        bad = {"Authorization": "Bearer not-a-key-at-all"}
        assert world.client.post("/api/v1/search", data={"appearance_id": "1"}).status_code == 401
        response = world.client.post("/api/v1/search", headers=bad, data={"appearance_id": "1"})
        assert response.status_code == 401
    assert count() == before + 2 and len(world.trail()) == rows
    warned = [e for e in logs if e["event"] == "api.unauthenticated"]
    assert len(warned) == 2 and all(e["log_level"] == "warning" for e in warned)
    assert warned[0]["path"] == "/api/v1/search" and warned[0]["client"]
    assert "not-a-key-at-all" not in repr(logs)


def _cli_env(world: World, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
    settings = world.services.settings
    env.update(
        SURVEIL_STORAGE__ROOT=str(settings.storage.root),
        SURVEIL_DATABASE__URL=world.url,
        SURVEIL_MODEL_DIR=str(world.models),
        SURVEIL_DETECTOR__WEIGHTS=str(world.models / "yolov8n_int8_dynamic.onnx"),
    )
    return env


def test_cli_search_is_audited_as_the_os_user(world: World, tmp_path: Path) -> None:
    env = _cli_env(world, tmp_path)
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(world.crop)
    before = len(world.trail())
    run_cli(env, "search", str(crop), "--label", "person", "--limit", "5", "--json")
    refused = run_cli(env, "search", str(crop), "--since", "yesterday", code=2)
    assert refused.stderr.count("\n") == 1 and "since" in refused.stderr
    done, bad = world.trail()[:2][::-1]
    assert len(world.trail()) == before + 2
    actor = f"cli:{getpass.getuser()}"
    assert (done.entry.key_name, done.entry.role, done.entry.status) == (actor, "cli", "ok")
    assert done.entry.query_kind == "image" and done.entry.crop_sha256
    assert done.entry.filters["limit"] == 5 and done.entry.result_count == 0
    assert (bad.entry.key_name, bad.entry.status) == (actor, "refused")
    assert (bad.entry.detail or "").startswith("exit 2: ") and bad.entry.filters["since"]


def test_rule_tests_are_audited_from_the_cli_and_the_api(world: World, tmp_path: Path) -> None:
    rule_id = make_rule(world.services, name="audited-rule")
    env = _cli_env(world, tmp_path)
    run_cli(env, "rules", "test", "audited-rule", "--since", "2026-01-01T00:00:00Z", "--json")
    cli = world.last("rule_test").entry
    assert (cli.key_name, cli.status, cli.result_count) == (f"cli:{getpass.getuser()}", "ok", 0)
    assert cli.filters == {"rule": "audited-rule", "since": "2026-01-01T00:00:00Z"}
    run_cli(env, "rules", "test", "no-such-rule", "--since", "2026-01-01T00:00:00Z", code=None)
    assert world.last("rule_test").entry.status == "refused"

    response = world.client.post(
        f"/api/v1/rules/{rule_id}/test",
        headers=world.auth("operator"),
        json={"since": "2026-01-01T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    api = world.last("rule_test").entry
    assert (api.key_name, api.status, api.client) == ("t-operator", "ok", "testclient")
    assert api.filters == {"rule_id": rule_id, "since": "2026-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def pg_world(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path, pg_server: str
) -> Iterator[World]:
    from conftest import fresh_pg_database

    root = tmp_path_factory.mktemp("search-audit-pg")
    with fresh_pg_database(pg_server) as url:
        yield from _build(root, url, shared_data / "models", _crop(shared_data))


@pytest.mark.postgres
def test_n_upload_attempts_leave_n_audit_rows(pg_world: World) -> None:
    world = pg_world
    _, png = cv2.imencode(".png", np.zeros((1001, 1000, 3), np.uint8))
    kinds = [
        ("operator", {"image": ("c.jpg", b"not an image", "image/jpeg")}),  # 415
        ("operator", {"image": ("big.jpg", b"\xff\xd8" + b"0" * MAX_UPLOAD, "image/jpeg")}),
        ("operator", {"image": ("huge.png", png.tobytes(), "image/png")}),  # 422
        ("viewer", {"image": ("c.jpg", world.crop, "image/jpeg")}),  # 403
        ("operator", {"image": ("c.jpg", world.crop, "image/jpeg")}),  # 200
    ]
    before = len(world.trail())
    statuses = []
    for i in range(21):
        role, files = kinds[i % len(kinds)]
        extra = {"since": "never"} if i in (4, 19) else {}  # two good crops, bad since: 400
        response = world.search(role, files=files, label="person", **extra)
        statuses.append(response.status_code)
    assert set(statuses) == {200, 400, 403, 413, 415, 422}, statuses
    rows = world.trail()[: len(world.trail()) - before]
    assert len(rows) == 21
    assert sum(r.entry.status == "ok" for r in rows) == statuses.count(200)
