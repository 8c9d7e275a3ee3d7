"""Session fixtures for the HTTP API: one real catalog on PostgreSQL, keys per role, a server.

The catalog is ingested once (real detector and embedders over ../shared/data) because
the models are slow on two CPU cores; API tests read it and add only keys and audit rows.
Imported into tests/conftest.py so API, fuzz and browser tests share it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from streams import free_port

from surveil.api.app import create_app
from surveil.config import Settings, load_settings
from surveil.container import Services, build_services
from surveil.domain import ROLES, StoredAppearance
from surveil.ingest.pipeline import IngestOptions
from surveil.storage.migrate import upgrade

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOBBY = Path("videos/intel_sample_videos/one-by-one-person-detection.mp4")
MOT09 = Path("mot/MOT17-mini/train/MOT17-09-FRCNN/img1")


@dataclass
class ApiWorld:
    """The ingested catalog, its services and app, and a live key for every role."""

    settings: Settings
    services: Services
    app: FastAPI
    keys: dict[str, str]
    key_ids: dict[str, int]
    example_crop: Path
    example: StoredAppearance
    root: Path
    extra: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        """Headers carrying the key of a role."""
        return {"Authorization": f"Bearer {self.keys[role]}"}


def world_settings(root: Path, url: str, models: Path, **overrides: Any) -> Settings:
    """The API world's settings (real offline models), with dotted-key `overrides`."""
    return load_settings(
        overrides={
            "storage.root": str(root / "data"),
            "database.url": url,
            "model_dir": str(models),
            "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
            # Small enough that the limit tests do not need megabytes of test data.
            "api.max_upload_bytes": 2 * 1024 * 1024,
            "api.max_image_pixels": 4_000_000,
            "api.index_refresh_seconds": 0.0,
            **overrides,
        }
    )


def _ingest(services: Services, shared: Path) -> None:
    services.ingest(str(shared / LOBBY), IngestOptions(camera_id="lobby"), start=T0)
    options = IngestOptions(camera_id="cam09", all_frames=True)
    services.ingest(str(shared / MOT09), options, start=T0 + timedelta(minutes=5))


@contextmanager
def built_world(
    root: Path, pg_server: str, shared: Path, ingest: Callable[[Services, Path], None]
) -> Iterator[ApiWorld]:
    """A catalog of its own (a fresh PostgreSQL database) filled by `ingest`, and its app.

    The world the API tests share is one; a test module that needs other footage builds
    another the same way, so every world has the same keys, example and settings.
    """
    from conftest import fresh_pg_database

    with pytest.MonkeyPatch.context() as mp, fresh_pg_database(pg_server) as url:
        for key in [k for k in os.environ if k.startswith("SURVEIL_")]:
            mp.delenv(key)
        settings = world_settings(root, url, shared / "models")
        upgrade(url)
        services = build_services(settings)
        try:
            services.load_models()  # as `serve` does before it listens
            ingest(services, shared)
            keys: dict[str, str] = {}
            ids: dict[str, int] = {}
            for role in ROLES:
                info, key = services.access.create_key(name=f"test-{role}", role=role)
                keys[role], ids[role] = key, info.id
            info, key = services.access.create_key(name="test-revoked", role="admin")
            services.access.revoke_key(info.id)
            keys["revoked"], ids["revoked"] = key, info.id
            example = services.catalog.best_appearance(label="person")
            assert example is not None, "the sample video yielded no person"
            crop = root / "example.jpg"
            crop.write_bytes(services.blobs.get(example.crop_path))
            app = create_app(services)
            yield ApiWorld(settings, services, app, keys, ids, crop, example, root)
        finally:
            services.close()


@pytest.fixture(scope="session")
def api_world(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path, pg_server: str
) -> Iterator[ApiWorld]:
    root = tmp_path_factory.mktemp("api-world")
    with built_world(root, pg_server, shared_data, _ingest) as world:
        yield world


@pytest.fixture
def client(api_world: ApiWorld) -> Iterator[TestClient]:
    """The real app in-process (no mocks: same services, same database)."""
    with TestClient(api_world.app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class LiveServer:
    """A uvicorn server on loopback serving the API world's app."""

    base_url: str
    keys: dict[str, str]
    example_crop: Path


@contextmanager
def serving(app: FastAPI, *, name: str = "uvicorn") -> Iterator[str]:
    """`app` served for real over HTTP on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(api_world: ApiWorld) -> Iterator[LiveServer]:
    """The app served for real over HTTP on 127.0.0.1 (for browsers and load)."""
    with serving(api_world.app) as base_url:
        yield LiveServer(base_url, api_world.keys, api_world.example_crop)
