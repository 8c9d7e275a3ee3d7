"""/readyz says ready only once the models a search needs are loaded (serve loads them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SettingsFactory
from fastapi.testclient import TestClient

from surveil.api.app import create_app
from surveil.container import build_services
from surveil.domain import ConfigError

YOLO = "yolov8n_int8_dynamic.onnx"


def test_readyz_waits_for_the_models(make_settings: SettingsFactory, models_dir: Path) -> None:
    settings = make_settings(**{"model_dir": str(models_dir), "detector.weights": YOLO})
    services = build_services(settings)
    try:
        with TestClient(create_app(services)) as client:
            before = client.get("/readyz")
            assert before.status_code == 503
            assert before.json()["checks"] == {
                "database": "ok",
                "index": "ok",
                "blobs": "ok",
                "models": "loading",
            }
            services.load_models()
            after = client.get("/readyz")
            assert after.status_code == 200, after.text
            assert after.json()["checks"]["models"] == "ok"
    finally:
        services.close()


def test_load_models_names_the_setting_to_fix(make_settings: SettingsFactory) -> None:
    services = build_services(make_settings())  # yolo11n.pt, nowhere on disk, offline
    try:
        with pytest.raises(ConfigError, match=r"detector\.weights"):
            services.load_models()
        assert not services.models_ready
    finally:
        services.close()
