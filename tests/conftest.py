"""Fixtures shared by every test: real data, real databases, settings pointing at both.

- `shared_data`: ../shared/data (or $SHARED_DATA_DIR); tests skip with the reason only
  where it is truly absent.
- `database_url`: parametrised over SQLite (in tmp) and PostgreSQL (a fresh database per
  test on $TEST_PG_URL's server). In CI (CI=true) an unreachable PostgreSQL fails the
  run instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from surveil.config import Settings, load_settings
from surveil.container import Services, build_services
from surveil.storage.migrate import upgrade

REPO = Path(__file__).resolve().parent.parent
PG_URL: str = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _shared_data_dir() -> Path:
    return Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if not (path / "MANIFEST.md").is_file():
        pytest.skip(f"real test data not found at {path} (set SHARED_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def models_dir(shared_data: Path) -> Path:
    return shared_data / "models"


def _libpq_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _pg_available() -> str | None:
    try:
        with psycopg.connect(_libpq_dsn(PG_URL), connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server URL; fails in CI when unreachable, skips elsewhere."""
    problem = _pg_available()
    if problem:
        message = f"PostgreSQL at {PG_URL} unreachable: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the database tests; see scripts/ensure-postgres)")
        pytest.skip(message)
    return PG_URL


@contextmanager
def fresh_pg_database(server_url: str) -> Iterator[str]:
    """Create an empty uniquely named database on the server, drop it afterwards."""
    name = f"surveil_t_{uuid.uuid4().hex[:12]}"
    admin = _libpq_dsn(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_pg_database(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both catalog back-ends the product supports; each test runs once on each."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'catalog.db').as_posix()}"
    url: str = request.getfixturevalue("pg_url")
    return url


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SettingsFactory:
    """Settings rooted in tmp_path; keyword overrides use dotted keys ('detector.weights').

    The environment is cleared of SURVEIL_* so a developer's shell cannot leak in.
    """
    for key in list(os.environ):
        if key.startswith("SURVEIL_"):
            monkeypatch.delenv(key)
    # A ./surveil.yaml left by `surveil demo` in the checkout must not leak in either.
    monkeypatch.setattr("surveil.config.LOCAL_CONFIG", tmp_path / "surveil.yaml")

    def build(**overrides: Any) -> Settings:
        merged: dict[str, Any] = {"storage.root": str(tmp_path / "data")}
        merged.update({k.replace("__", "."): v for k, v in overrides.items()})
        return load_settings(overrides=merged)

    return build


@pytest.fixture
def offline_settings(
    make_settings: SettingsFactory, models_dir: Path, database_url: str
) -> Settings:
    """Settings that use the real offline models from shared data, on each database."""
    return make_settings(
        **{
            "model_dir": str(models_dir),
            "detector.weights": str(models_dir / "yolov8n_int8_dynamic.onnx"),
            "database.url": database_url,
        }
    )


@contextmanager
def services_for(settings: Settings) -> Iterator[Services]:
    """Services over `settings`, the catalog migrated as `surveil db upgrade` does."""
    if not settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)
    built = build_services(settings, reconcile_index=False)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def offline_services(offline_settings: Settings) -> Iterator[Services]:
    """Services with the real offline models, on each database."""
    with services_for(offline_settings) as services:
        yield services


# The API's session fixtures live in their own module; importing them here shares them
# with tests/api (HTTP tests, fuzzing) and tests/e2e (the browser test).
from api_world import api_world, client, live_server  # noqa: E402, F401
from chromium import browser, shots  # noqa: E402, F401
from milvus_server import milvus_prefix, milvus_server, milvus_uri  # noqa: E402, F401
from s3_server import s3_bucket, s3_endpoint  # noqa: E402, F401
from streams import http_stream_factory, postgres_cluster, rtsp_stream_factory  # noqa: E402, F401
