"""Backup and restore on real catalogs without models: an older release's backup restores
forward, a non-empty target needs --force, and a missing pg_dump is one clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SettingsFactory
from s3_server import S3Endpoint
from sqlalchemy import text

from surveil.container import open_blobs
from surveil.domain import ConfigError, InputError
from surveil.storage.backup import create_backup, read_manifest
from surveil.storage.db import make_engine
from surveil.storage.migrate import head_revision, upgrade
from surveil.storage.restore import restore_backup

#: A revision of an earlier release (before operator feedback and space models).
OLD = "0008"


def test_an_older_release_backup_restores_into_this_one(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()  # SQLite at <storage.root>/catalog.db, local blobs, FAISS
    url = settings.database_url
    upgrade(url, OLD)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cameras (id, name, enabled, created_at, tags) VALUES "
                "('door', 'Door', true, '2026-01-01 00:00:00', '[]')"
            )
        )
    engine.dispose()
    crop = settings.storage.root / "crops" / "door" / "1.jpg"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(b"\xff\xd8 a crop \xff\xd9")

    made = create_backup(settings, tmp_path / "backup")
    manifest = read_manifest(tmp_path / "backup")
    assert made["alembic_revision"] == manifest["alembic_revision"] == OLD
    assert manifest["counts"]["cameras"] == 1 and manifest["models"] == {}
    assert "media/crops/door/1.jpg" in manifest["files"]
    assert not any(name.startswith("media/catalog.db") for name in manifest["files"])

    with pytest.raises(InputError, match="refuses to overwrite: the catalog has"):
        restore_backup(settings, tmp_path / "backup")
    shutil.rmtree(settings.storage.root)

    done = restore_backup(settings, tmp_path / "backup")
    assert (done["from_revision"], done["revision"]) == (OLD, head_revision())
    assert done["counts"]["cameras"] == 1 and done["media_files"] == 1
    assert crop.read_bytes() == b"\xff\xd8 a crop \xff\xd9"

    crop.write_bytes(b"changed after the backup")
    again = restore_backup(settings, tmp_path / "backup", force=True, rebuild_index=True)
    assert again["index"]["action"] == "rebuilt" and again["revision"] == head_revision()
    assert crop.read_bytes() == b"\xff\xd8 a crop \xff\xd9"


def test_a_backup_into_a_used_folder_or_the_store_is_refused(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    upgrade(settings.database_url)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    with pytest.raises(InputError, match="is not empty"):
        create_backup(settings, tmp_path / "used")
    with pytest.raises(InputError, match=r"inside storage\.root"):
        create_backup(settings, settings.storage.root / "backups" / "today")


def test_without_pg_dump_the_error_names_the_package(
    make_settings: SettingsFactory, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(pg_url)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(ConfigError, match=r"pg_dump not found.*postgresql-client"):
        create_backup(make_settings(**{"database.url": pg_url}), tmp_path / "backup")


def test_s3_media_goes_through_the_bucket_and_back(
    make_settings: SettingsFactory, s3_bucket: S3Endpoint, tmp_path: Path
) -> None:
    """With storage.blobs s3 the media are read from the bucket and restored into another
    (an empty one: the old bucket is lost), the catalog beside them."""
    settings = make_settings(**s3_bucket.overrides())
    upgrade(settings.database_url)
    blobs = open_blobs(settings)
    stored = {"crops/door/1.jpg": b"crop one", "keyframes/door/1/00000001.jpg": b"frame one"}
    try:
        blobs.put_many(list(stored.items()))
    finally:
        blobs.close()
    manifest = create_backup(settings, tmp_path / "backup")
    assert manifest["blobs"] == "s3" and manifest["files"] == 3  # the catalog and two blobs

    shutil.rmtree(settings.storage.root)  # the SQLite catalog lives there
    other = S3Endpoint(s3_bucket.url, f"{s3_bucket.bucket}-new")
    target = make_settings(**other.overrides())
    done = restore_backup(target, tmp_path / "backup")
    assert done["media_files"] == 2
    blobs = open_blobs(target)
    try:
        assert {key: blobs.get(key) for key in stored} == stored
    finally:
        blobs.close()


def test_an_unreadable_shard_is_rebuilt_from_the_catalog(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """Shards linked while `run` was saving may not load: restore rebuilds them instead."""
    settings = make_settings()
    upgrade(settings.database_url)
    shard = settings.storage.root / "index" / "person" / "2026-01-01.faiss"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"not a FAISS index")
    create_backup(settings, tmp_path / "backup")
    assert "index/person/2026-01-01.faiss" in read_manifest(tmp_path / "backup")["files"]
    shutil.rmtree(settings.storage.root)

    done = restore_backup(settings, tmp_path / "backup")
    assert done["index"] == {"action": "rebuilt", "vectors": {"person": 0, "general": 0}}
    assert not shard.exists()
