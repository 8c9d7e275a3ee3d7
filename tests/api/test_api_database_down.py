"""The catalog database vanishing under a running app: 503 with a retry hint, not a 500."""

from __future__ import annotations

from pathlib import Path

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from surveil.api.app import create_app
from surveil.config import load_settings
from surveil.container import build_services
from surveil.storage.migrate import upgrade


def test_lost_database_is_503_unavailable_and_readyz_says_why(tmp_path: Path, pg_url: str) -> None:
    upgrade(pg_url)
    settings = load_settings(
        overrides={
            "storage.root": str(tmp_path / "data"),
            "database.url": pg_url,
            "api.console": False,
        }
    )
    services = build_services(settings)
    try:
        _, key = services.access.create_key(name="ops", role="viewer")
        auth = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            assert client.get("/api/v1/cameras", headers=auth).status_code == 200
            _drop(pg_url)  # what a client sees when the server is gone or the db is lost

            response = client.get("/api/v1/cameras", headers=auth)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "unavailable"
            assert response.headers["retry-after"] == "5"
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "unreachable"
            assert client.get("/healthz").status_code == 200  # alive: do not restart it
    finally:
        services.close()


def _drop(url: str) -> None:
    base, _, name = url.rpartition("/")
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1) + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
