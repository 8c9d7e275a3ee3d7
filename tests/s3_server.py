"""A real S3-compatible HTTP server for tests: moto's server mode in its own process.

Fixture `s3_endpoint` (session-scoped) starts `moto_server` on a free loopback port,
waits until it answers, sets AWS test credentials in the environment (boto3 reads them
as it would in production) and kills the process at teardown. It yields an `S3Endpoint`
with the URL and a fresh bucket name; `s3_bucket` gives every test its own empty bucket
on the same server. Reuse: `from s3_server import s3_endpoint, s3_bucket` (conftest.py
already does, so every test can ask for them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from streams import free_port

#: Test credentials moto accepts; never real ones.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "surveil-test-key",
    "AWS_SECRET_ACCESS_KEY": "surveil-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Endpoint:
    """A running S3-compatible server: its URL, and a bucket name for this use."""

    url: str
    bucket: str

    def overrides(self, **more: object) -> dict[str, object]:
        """Settings overrides (dotted keys) that put blobs in this bucket."""
        return {
            "storage.blobs": "s3",
            "storage.s3.endpoint_url": self.url,
            "storage.s3.bucket": self.bucket,
            "storage.s3.addressing_style": "path",
            "storage.s3.create_bucket": True,
            **more,
        }

    def env(self) -> dict[str, str]:
        """Environment for a surveil process started by a test: the bucket (through the
        SURVEIL_STORAGE__* contract) and the test credentials."""
        return {
            **TEST_CREDENTIALS,
            "SURVEIL_STORAGE__BLOBS": "s3",
            "SURVEIL_STORAGE__S3__ENDPOINT_URL": self.url,
            "SURVEIL_STORAGE__S3__BUCKET": self.bucket,
            "SURVEIL_STORAGE__S3__ADDRESSING_STYLE": "path",
            "SURVEIL_STORAGE__S3__CREATE_BUCKET": "true",
        }


def _moto_command(port: int) -> list[str]:
    """moto_server beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        pytest.skip("moto_server not installed (pip install 'moto[server]', the dev extra)")
    return [found, "-H", "127.0.0.1", "-p", str(port)]


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode} before answering")
        try:
            httpx.get(url, timeout=1)  # any HTTP answer means it listens
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer at {url} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server on loopback for the whole session, with test AWS credentials."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in TEST_CREDENTIALS.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        env = {**os.environ, **TEST_CREDENTIALS}
        proc = subprocess.Popen(
            _moto_command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_until_up(url, proc)
            yield S3Endpoint(url, f"surveil-{uuid.uuid4().hex[:12]}")
        finally:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint) -> S3Endpoint:
    """The session's server with a bucket name of this test's own (created on first use)."""
    return S3Endpoint(s3_endpoint.url, f"surveil-{uuid.uuid4().hex[:12]}")
