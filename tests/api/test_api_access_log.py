"""One access-log line per API request, refusals included; never the key or a query string."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from surveil.api.app import create_app
from surveil.config import LoggingSettings, load_settings
from surveil.container import build_services
from surveil.logs import configure_logging


@contextmanager
def _client(
    tmp_path: Path, models: Path, **overrides: Any
) -> Iterator[tuple[TestClient, str, int]]:
    """The real app on an empty SQLite catalog, and an operator key and its id."""
    settings = load_settings(
        overrides={
            "storage.root": str(tmp_path / "data"),
            "database.url": f"sqlite:///{tmp_path / 'catalog.db'}",
            "model_dir": str(models),
            "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
            "embedders.person.weights": str(models / "osnet_x0_25_msmt17.onnx"),
            "api.console": False,
            "api.max_upload_bytes": 4096,
            **overrides,
        }
    )
    services = build_services(settings)
    try:
        info, key = services.access.create_key(name="ops", role="operator")
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield client, key, info.id
    finally:
        services.close()


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """The real structlog output on stderr, JSON lines at INFO, as `serve --log-json` writes."""
    configure_logging(LoggingSettings(format="json"))
    return lambda: capsys.readouterr().err


def _requests(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "http.request"]


def test_every_request_gets_one_line_refusals_included(
    tmp_path: Path, models_dir: Path, log_lines: Callable[[], str]
) -> None:
    with _client(tmp_path, models_dir) as (client, key, key_id):
        auth = {"Authorization": f"Bearer {key}"}
        assert client.get("/api/v1/cameras?token=s3cret-in-url", headers=auth).status_code == 200
        assert client.get("/api/v1/cameras").status_code == 401
        not_image = {"image": ("crop.jpg", b"plain text, not a picture", "image/jpeg")}
        assert client.post("/api/v1/search", headers=auth, files=not_image).status_code == 415
        too_big = {"image": ("crop.jpg", b"x" * 10_000, "image/jpeg")}
        assert client.post("/api/v1/search", headers=auth, files=too_big).status_code == 413
        assert client.get("/api/v1/cameras", headers=auth).status_code == 200

    text = log_lines()
    lines = _requests(text)
    got = [(r["method"], r["route"], r["status"]) for r in lines]
    assert got == [
        ("GET", "/api/v1/cameras", 200),
        ("GET", "/api/v1/cameras", 401),
        ("POST", "/api/v1/search", 415),
        ("POST", "/api/v1/search", 413),  # refused while streaming in: the path, no route
        ("GET", "/api/v1/cameras", 200),
    ]
    assert [r["key_id"] for r in lines] == [key_id, None, key_id, None, key_id]
    assert all(r["level"] == "info" and r["ms"] >= 0 and r["client"] for r in lines)
    assert key not in text and "s3cret-in-url" not in text


def test_access_log_can_be_switched_off(
    tmp_path: Path, models_dir: Path, log_lines: Callable[[], str]
) -> None:
    with _client(tmp_path, models_dir, **{"api.access_log": False}) as (client, key, _):
        assert client.get("/api/v1/cameras").status_code == 401
        auth = {"Authorization": f"Bearer {key}"}
        assert client.get("/api/v1/cameras", headers=auth).status_code == 200
    assert _requests(log_lines()) == []
