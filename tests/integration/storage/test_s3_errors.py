"""S3 misconfiguration stops start-up with one line naming endpoint, bucket and the fix."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError
from s3_server import S3Endpoint
from streams import free_port

from surveil.config import load_settings
from surveil.container import open_blobs
from surveil.domain import BlobStoreUnavailableError, ConfigError
from surveil.storage.blobs.s3 import explain


def _settings(endpoint: S3Endpoint, **more: object) -> dict[str, object]:
    return {**endpoint.overrides(**more), "storage.root": "unused-root"}


def test_a_missing_bucket_is_named_unless_creation_is_asked(s3_bucket: S3Endpoint) -> None:
    overrides = _settings(s3_bucket, **{"storage.s3.create_bucket": False})
    with pytest.raises(BlobStoreUnavailableError) as caught:
        open_blobs(load_settings(overrides=overrides))
    line = str(caught.value)
    assert "\n" not in line
    assert s3_bucket.bucket in line and s3_bucket.url in line
    assert "does not exist" in line and "create_bucket" in line
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in line
    created = open_blobs(load_settings(overrides=_settings(s3_bucket)))  # creates it
    created.put("a.jpg", b"x")
    assert created.get("a.jpg") == b"x"
    created.close()


def test_an_unreachable_endpoint_is_named(s3_bucket: S3Endpoint) -> None:
    dead = S3Endpoint(f"http://127.0.0.1:{free_port()}", s3_bucket.bucket)
    overrides = _settings(dead, **{"storage.s3.timeout_seconds": 1})
    with pytest.raises(BlobStoreUnavailableError, match="cannot reach the endpoint") as caught:
        open_blobs(load_settings(overrides=overrides))
    assert dead.url in str(caught.value) and "storage.s3.endpoint_url" in str(caught.value)


def test_refused_credentials_say_access_denied_without_the_secret() -> None:
    # moto's server accepts any key, so the store's answer is built as botocore builds it.
    refused = ClientError(
        {"Error": {"Code": "InvalidAccessKeyId", "Message": "no such key"}}, "GetObject"
    )
    line = explain(refused)
    assert "access denied (InvalidAccessKeyId)" in line and "AWS credentials" in line


def test_s3_needs_a_bucket_name(make_settings: object) -> None:
    with pytest.raises(ConfigError, match="SURVEIL_STORAGE__S3__BUCKET"):
        open_blobs(load_settings(overrides={"storage.blobs": "s3", "storage.root": "x"}))


def test_a_prefix_is_normalised_and_checked() -> None:
    s = load_settings(overrides={"storage.s3.prefix": "/site-a/"})
    assert s.storage.s3.prefix == "site-a/"
    with pytest.raises(ConfigError):
        load_settings(overrides={"storage.s3.prefix": "a/../b"})
