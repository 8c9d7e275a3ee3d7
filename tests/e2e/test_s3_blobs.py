"""Crops and keyframes in S3, end to end: ingest, search, serve over HTTP, retention.

Everything is real: the offline models over a real MOT17 clip, the catalog on
PostgreSQL, the bucket on a moto S3 server process, the API app in-process. The bucket
is read back with its own boto3 client, so the test sees what an operator would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from api_world import MOT09, T0, world_settings
from catalog_sql import catalog_rows
from cli_process import cli_env, run_cli
from fastapi.testclient import TestClient
from s3_server import S3Endpoint
from streams import free_port

from surveil.api.app import create_app
from surveil.config import S3Settings
from surveil.container import Services, build_services
from surveil.ingest.pipeline import IngestOptions
from surveil.jobs.retention import retention_parts, run_retention
from surveil.storage.blobs.claims import FlockClaims
from surveil.storage.blobs.s3 import S3BlobStore
from surveil.storage.migrate import upgrade

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def services(
    tmp_path: Path, pg_url: str, shared_data: Path, s3_bucket: S3Endpoint
) -> Iterator[Services]:
    overrides = s3_bucket.overrides(**{"retention.days": 30})
    settings = world_settings(tmp_path, pg_url, shared_data / "models", **overrides)
    upgrade(pg_url)
    built = build_services(settings)
    try:
        options = IngestOptions(camera_id="cam09", all_frames=True)
        built.ingest(str(shared_data / MOT09), options, start=T0)
        yield built
    finally:
        built.close()


def _objects(endpoint: S3Endpoint) -> dict[str, bytes]:
    s3 = boto3.client("s3", endpoint_url=endpoint.url)
    listed = s3.list_objects_v2(Bucket=endpoint.bucket).get("Contents", [])
    return {
        o["Key"]: s3.get_object(Bucket=endpoint.bucket, Key=o["Key"])["Body"].read() for o in listed
    }


def test_ingest_search_serve_and_retention_with_s3(
    services: Services, s3_bucket: S3Endpoint, tmp_path: Path
) -> None:
    stored = _objects(s3_bucket)
    rows = services.catalog.source_blob_keys(source_id=1)
    assert rows and rows == set(stored), "every row's blob is in the bucket, and nothing else"
    assert not (tmp_path / "data" / "crops").exists()  # nothing went to the local disk

    _, key = services.access.create_key(name="s3-test", role="operator")
    auth = {"Authorization": f"Bearer {key}"}
    example = services.catalog.best_appearance(label="person")
    assert example is not None and example.crop_path is not None
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        found = client.post("/api/v1/search", headers=auth, data={"appearance_id": str(example.id)})
        assert found.status_code == 200, found.text
        hits = [a for s in found.json()["sightings"] for a in s["appearances"]]
        assert any(a["id"] == example.id for a in hits)

        crop = client.get(f"/api/v1/appearances/{example.id}/crop.jpg", headers=auth)
        assert crop.status_code == 200, crop.text
        assert crop.headers["content-type"] == "image/jpeg"
        assert crop.headers["cache-control"] == "private, max-age=3600"
        assert crop.content == stored[example.crop_path]
        kf = client.get(f"/api/v1/keyframes/{example.keyframe_id}.jpg", headers=auth)
        assert kf.status_code == 200 and kf.content[:2] == b"\xff\xd8"
        assert client.get(f"/api/v1/appearances/{example.id}/crop.jpg").status_code == 401

        _check_errors(client, services, s3_bucket, auth, example.crop_path, example.id)

    # An orphan, as a crash between upload and commit leaves one; then everything expires.
    boto3.client("s3", endpoint_url=s3_bucket.url).put_object(
        Bucket=s3_bucket.bucket, Key="crops/cam09/1/orphan.jpg", Body=b"orphan"
    )
    later = T0 + timedelta(days=400)
    parts = retention_parts(services)
    preview = run_retention(
        parts, services.settings.retention, now=later, dry_run=True, full_sweep=True
    )
    assert preview.orphans is not None and preview.orphans.files == 0  # young: maybe in flight
    report = run_retention(
        parts, services.settings.retention, now=later, grace=timedelta(0), full_sweep=True
    )
    assert report.appearances == len([k for k in rows if k.startswith("crops/")])
    assert report.orphans is not None and report.orphans.files == 1
    left = set(_objects(s3_bucket))
    # Only the search's audit copy stays: audit rows own it, and they have their own policy.
    assert left and all(k.startswith("audit/") for k in left)
    assert services.catalog.count_appearances() == 0


def _check_errors(
    client: TestClient,
    services: Services,
    endpoint: S3Endpoint,
    auth: dict[str, str],
    crop_key: str,
    appearance_id: int,
) -> None:
    """A missing object is a 404; an unreachable store a 503 that names no bucket."""
    s3 = boto3.client("s3", endpoint_url=endpoint.url)
    data = s3.get_object(Bucket=endpoint.bucket, Key=crop_key)["Body"].read()
    s3.delete_object(Bucket=endpoint.bucket, Key=crop_key)
    try:
        missing = client.get(f"/api/v1/appearances/{appearance_id}/crop.jpg", headers=auth)
        assert missing.status_code == 404
        assert "missing" in missing.json()["error"]["message"]
    finally:
        s3.put_object(Bucket=endpoint.bucket, Key=crop_key, Body=data)
    dead_url = f"http://127.0.0.1:{free_port()}"
    dead = S3BlobStore(
        S3Settings(endpoint_url=dead_url, bucket=endpoint.bucket, timeout_seconds=1),
        FlockClaims(Path("unused")),
    )
    kept, services.blobs = services.blobs, dead
    try:
        down = client.get(f"/api/v1/appearances/{appearance_id}/crop.jpg", headers=auth)
        ready = client.get("/readyz")
    finally:
        services.blobs = kept
        dead.close()
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    message: Any = down.json()["error"]["message"]
    assert "image store is unreachable" in message and endpoint.bucket not in message
    assert ready.status_code == 503 and ready.json()["checks"]["blobs"] == "unreachable"


#: An ingest child that dies once a batch's objects are uploaded, before its rows commit
#: (the hook is where test_ingest_leftovers.py kills its child too).
KILLED_BEFORE_COMMIT = textwrap.dedent(
    """
    import os, sys
    from surveil.config import load_settings
    from surveil.container import build_services
    from surveil.ingest.pipeline import IngestOptions
    from surveil.ingest.sources import open_source

    services = build_services(load_settings())

    def die(batch, tracks):
        os._exit(17)

    services.catalog.add_tracked = die
    source = open_source(sys.argv[1], camera_id="cam09")
    services.ingest_pipeline().run(source, IngestOptions(camera_id="cam09", all_frames=True))
    """
)


def test_objects_of_a_batch_killed_before_its_commit_are_removed_on_resume(
    tmp_path: Path, pg_url: str, shared_data: Path, s3_bucket: S3Endpoint
) -> None:
    env = cli_env(
        tmp_path / "data",
        pg_url,
        shared_data / "models",
        SURVEIL_INGEST__BATCH_SIZE="4",
        **s3_bucket.env(),
    )
    run_cli(env, "db", "upgrade")
    source = str(shared_data / MOT09)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_COMMIT, source],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert killed.returncode == 17, killed.stderr
    left = set(_objects(s3_bucket))
    assert left and not _referenced(pg_url)  # uploaded, and no row points at any of them

    resumed = run_cli(env, "ingest", source, "--camera", "cam09", "--json")
    assert "ingest.leftovers_removed" in resumed.stderr
    assert set(_objects(s3_bucket)) == _referenced(pg_url)  # no object without a row
    assert not (tmp_path / "data" / "crops").exists()


def _referenced(url: str) -> set[str]:
    rows = catalog_rows(
        url,
        "SELECT crop_path FROM appearances UNION SELECT image_path FROM keyframes",
        {},
    )
    return {str(k) for (k,) in rows if k}


def test_a_size_budget_on_s3_removes_the_oldest_objects(
    services: Services, s3_bucket: S3Endpoint
) -> None:
    """Bytes come from the objects as stored; the oldest keyframes' objects leave the bucket."""
    from surveil.jobs.storage import storage_estimate

    stored = _objects(s3_bucket)
    usage = storage_estimate(services).usage
    files = usage.total - usage.overheads.catalog_bytes - usage.overheads.index_bytes
    assert files == sum(len(data) for data in stored.values())
    assert storage_estimate(services).to_dict()["disk_free_bytes"] is None  # no disk on S3

    budget = usage.total // 2
    settings = services.settings
    retention = settings.retention.model_copy(update={"max_bytes": budget})
    report = run_retention(retention_parts(services), retention, now=T0 + timedelta(days=1))

    assert 0 < report.reason["budget"].keyframes < 4 and report.reason["age"].keyframes == 0
    left = set(_objects(s3_bucket))
    assert left == services.catalog.source_blob_keys(source_id=1)  # no object without a row
    assert len(stored) - len(left) == report.files
    assert storage_estimate(services).usage.total <= budget
