"""`surveil backup create` -> wipe everything -> `surveil backup restore` -> the same search.

A copy of the API world (no new ingest) on SQLite and on PostgreSQL (pg_dump and
pg_restore of this machine): the CLI backs it up, the catalog database, the storage root
and the FAISS shards are deleted, a damaged backup is refused before anything changes,
and the restored catalog, media and index answer the same search with the same scores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api_world import ApiWorld, world_settings
from conftest import _libpq_dsn, services_for
from psycopg import sql
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result
from world_copy import copy_world

from surveil.cli import app
from surveil.config import Settings
from surveil.domain import SearchFilters
from surveil.storage.migrate import head_revision
from surveil.vision.crops import decode_image

Found = list[tuple[int | None, str, float, tuple[tuple[int, float], ...]]]


def _search(settings: Settings, crop: bytes) -> tuple[Found, dict[str, bytes]]:
    """Every sighting a person search by the crop finds (track, camera, score, hits), and
    the crop files of its hits."""
    with services_for(settings) as s:
        image = decode_image(crop, what="example")
        result = s.search().by_image(
            image, label="person", filters=SearchFilters(min_score=0.5), limit=50
        )
        found = [
            (
                x.track_id,
                x.camera_id,
                round(x.best_score, 6),
                tuple((h.appearance.id, round(h.score, 6)) for h in x.hits),
            )
            for x in result.sightings
        ]
        paths = {h.appearance.crop_path for x in result.sightings for h in x.hits}
        return found, {p: s.blobs.get(p) for p in sorted(paths)}


def _cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _wipe_catalog(url: str) -> None:
    """Delete the catalog itself: the SQLite file, or the PostgreSQL database (re-created empty)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    name = sql.Identifier(str(parsed.database))
    admin = _libpq_dsn(parsed.set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def _replace(path: Path, data: bytes) -> None:
    """Replace a backup file by a new one (never write through a hard link to the store)."""
    path.unlink()
    path.write_bytes(data)


def test_backup_wipe_restore_finds_the_same(
    api_world: ApiWorld,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if database_url.startswith("postgresql") and not shutil.which("pg_dump"):
        pytest.skip("pg_dump is not installed here")  # the command's own error is tested below
    monkeypatch.setattr("surveil.config.LOCAL_CONFIG", tmp_path / "surveil.yaml")
    copy_world(api_world.services, database_url, tmp_path / "data")
    settings = world_settings(tmp_path, database_url, api_world.settings.models_path)
    with services_for(settings) as s:
        s.rebuild_index()
    crop = api_world.example_crop.read_bytes()
    before, crops = _search(settings, crop)
    assert before and crops, "the example finds nobody: nothing to compare"

    env = {
        "SURVEIL_STORAGE__ROOT": str(settings.storage.root),
        "SURVEIL_DATABASE__URL": database_url,
        "SURVEIL_MODEL_DIR": str(settings.models_path),
    }
    backup = tmp_path / "backup"
    made = _cli(env, "backup", "create", str(backup), "--json")
    assert made.exit_code == 0, made.output
    summary: dict[str, Any] = json.loads(made.stdout)
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["alembic_revision"] == head_revision()
    assert manifest["index"] == "copied" and manifest["models"]["person"]["model_id"]
    assert manifest["counts"] == summary["counts"]
    assert manifest["counts"]["appearances"] == api_world.services.catalog.count_appearances()
    assert {f"media/{p}" for p in crops} <= set(manifest["files"])

    refused = _cli(env, "backup", "restore", str(backup))
    assert refused.exit_code == 2 and "refuses to overwrite" in refused.output

    _wipe_catalog(database_url)
    shutil.rmtree(settings.storage.root)

    damaged = backup / f"media/{next(iter(crops))}"
    original = damaged.read_bytes()
    _replace(damaged, original[:-1] + bytes([original[-1] ^ 1]))
    bad = _cli(env, "backup", "restore", str(backup))
    assert bad.exit_code == 2 and "does not match its SHA-256" in bad.output, bad.output
    assert not settings.storage.root.exists(), "a damaged backup changed the target"
    _replace(damaged, original)

    restored = _cli(env, "backup", "restore", str(backup), "--json")
    assert restored.exit_code == 0, restored.output
    report = json.loads(restored.stdout)
    assert report["counts"] == manifest["counts"] and report["revision"] == head_revision()
    index = report["index"]
    assert index["action"] == "restored", index  # the shards came back, not a rebuild
    assert not any(index["added"].values()) and not any(index["removed"].values()), index
    after, crops_after = _search(settings, crop)
    assert after == before
    assert crops_after == crops
