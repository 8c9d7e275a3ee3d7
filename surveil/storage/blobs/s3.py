"""`S3BlobStore`: crop and keyframe JPEGs in an S3-compatible bucket (AWS, MinIO, moto).

A single PUT is atomic in S3 (a reader sees the old object or the new, never half), so
put needs no temp-and-rename; put_many runs its PUTs on a small thread pool and returns
once every one succeeded, which is when ingest may commit the rows that point at them.
Credentials come only from boto3's chain (AWS_* variables, ~/.aws, instance roles) and
are never part of a message. Errors name the endpoint and bucket and what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from surveil.config import S3Settings
from surveil.domain import BlobStoreUnavailableError, ConfigError
from surveil.storage.blobs.claims import Claims
from surveil.storage.blobs.keys import validate_folder, validate_key
from surveil.storage.blobs.s3_files import S3BlobFiles

#: Error codes S3 uses for "no such object" (GetObject says NoSuchKey, HEAD only 404).
_MISSING = {"NoSuchKey", "404", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
_DENIED = {
    "AccessDenied",
    "403",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}


def make_client(settings: S3Settings) -> Any:
    """A boto3 S3 client for the settings; timeouts short so a dead store says so soon."""
    config = Config(
        region_name=settings.region,
        connect_timeout=settings.timeout_seconds,
        read_timeout=settings.timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=max(10, settings.upload_threads * 2),
        s3={"addressing_style": settings.addressing_style},
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.endpoint_url or None, config=config
    )


class S3BlobStore:
    """Blobs as objects under `prefix` in one bucket; claims come from `claims`."""

    def __init__(self, settings: S3Settings, claims: Claims, client: Any | None = None) -> None:
        if not settings.bucket:
            raise ConfigError(
                "storage.blobs is s3 but storage.s3.bucket is empty; "
                "set SURVEIL_STORAGE__S3__BUCKET (and SURVEIL_STORAGE__S3__ENDPOINT_URL "
                "for a store other than AWS)"
            )
        self._settings = settings
        self._bucket = settings.bucket
        self._prefix = settings.prefix
        self._claims = claims
        self._client = client if client is not None else make_client(settings)
        self._pool = ThreadPoolExecutor(settings.upload_threads, thread_name_prefix="s3-blobs")

    @property
    def where(self) -> str:
        """Endpoint and bucket, for messages (never credentials)."""
        endpoint = self._settings.endpoint_url or "AWS S3"
        return f"bucket {self._bucket!r} at {endpoint}"

    @property
    def client(self) -> Any:
        """The boto3 client (the inventory lists and batch-deletes with it)."""
        return self._client

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    def object_key(self, key: str) -> str:
        """The object key a blob key maps to (validated, under the prefix)."""
        return self._prefix + validate_key(key).as_posix()

    def blob_key(self, object_key: str) -> str:
        """The blob key of an object key listed under the prefix."""
        return object_key[len(self._prefix) :]

    def folder(self, prefix: str) -> str:
        """The object key prefix of a folder key ('crops/')."""
        return self._prefix + validate_folder(prefix)

    def check(self) -> None:
        """Fail start-up with one line when the bucket cannot be used (create it if asked)."""
        try:
            self._client.head_bucket(Bucket=self._bucket)
            return
        except ClientError as exc:
            if _code(exc) not in {"404", "NoSuchBucket"} or not self._settings.create_bucket:
                self.fail(exc, "checking")
        except (BotoCoreError, NoCredentialsError) as exc:
            self.fail(exc, "checking")
        with self.errors("creating"):
            extra: dict[str, Any] = {}
            region = self._client.meta.region_name
            if region and region != "us-east-1":
                extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self._client.create_bucket(Bucket=self._bucket, **extra)

    def put(self, key: str, data: bytes) -> None:
        """One PUT: atomic in S3, durable when it returns."""
        name = self.object_key(key)
        with self.errors("writing"):
            self._client.put_object(Bucket=self._bucket, Key=name, Body=data, **_type(key))

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """PUT every item on the thread pool; returns (durable) once all succeeded.

        The first failure is raised after the others finished, so the caller's discard
        of the batch's keys never races an upload still in flight.
        """
        names = [(self.object_key(key), key, data) for key, data in items]  # validate first
        if len(names) < 2:
            for _, key, data in names:
                self.put(key, data)
            return
        jobs = [self._pool.submit(self.put, key, data) for _, key, data in names]
        errors = [job.exception() for job in jobs]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def get(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none (as for local files)."""
        name = self.object_key(key)
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=name)["Body"]
            with body:
                data: bytes = body.read()
            return data
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(f"no blob {key!r} in {self.where}") from None
            self.fail(exc, "reading")
        except BotoCoreError as exc:
            self.fail(exc, "reading")

    def stat(self, key: str) -> tuple[int, float] | None:
        """(size, last-modified epoch seconds) of the object, or None when there is none."""
        name = self.object_key(key)
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=name)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            self.fail(exc, "reading")
        except BotoCoreError as exc:
            self.fail(exc, "reading")
        return int(head["ContentLength"]), head["LastModified"].timestamp()

    def exists(self, key: str) -> bool:
        """Whether an object is stored under the key (one HEAD)."""
        return self.stat(key) is not None

    def delete(self, key: str) -> bool:
        """Remove a key; whether it existed (S3's DELETE does not say, so HEAD first)."""
        if not self.exists(key):
            return False
        with self.errors("deleting"):
            self._client.delete_object(Bucket=self._bucket, Key=self.object_key(key))
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        """Every object under a folder key, by a paginated listing (1000 a page)."""
        for page in self.pages(prefix):
            yield from (self.blob_key(o["Key"]) for o in page)

    def pages(self, prefix: str) -> Iterator[list[dict[str, Any]]]:
        """The listing of a folder key, a page at a time (in key order, as S3 lists)."""
        paginator = self._client.get_paginator("list_objects_v2")
        with self.errors("listing"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self.folder(prefix)):
                yield list(page.get("Contents", []))

    def common_prefixes(self, prefix: str) -> Iterator[str]:
        """The object key prefixes one level below a folder key (a delimited listing)."""
        paginator = self._client.get_paginator("list_objects_v2")
        with self.errors("listing"):
            pages = paginator.paginate(
                Bucket=self._bucket, Prefix=self.folder(prefix), Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    yield str(common["Prefix"])

    def claim(self, name: str) -> AbstractContextManager[None]:
        """Hold `name` exclusively across processes and hosts, through the store's claims."""
        return self._claims.claim(name)

    def inventory(self) -> S3BlobFiles:
        """Retention's view: sizes by HEAD, deletes by DeleteObjects, ages by LastModified."""
        return S3BlobFiles(self)

    def map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        """`fn` over `items` on the store's request threads, results in order."""
        return list(self._pool.map(fn, items))

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn botocore's errors into one line naming the store and what to check."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            self.fail(exc, doing)

    def fail(self, exc: Exception, doing: str) -> NoReturn:
        """Raise BlobStoreUnavailableError for a botocore error (no credentials in the text)."""
        message = f"S3 {self.where}: {doing} failed: {explain(exc)}"
        raise BlobStoreUnavailableError(message) from None

    def close(self) -> None:
        """Stop the request threads and release the claims' database engine."""
        self._pool.shutdown(wait=True)
        self._claims.close()


def _type(key: str) -> dict[str, str]:
    return {"ContentType": "image/jpeg"} if key.endswith((".jpg", ".jpeg")) else {}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def explain(exc: Exception) -> str:
    """What went wrong and what to fix, in words an operator can act on."""
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _NO_BUCKET or (code == "404" and exc.operation_name == "HeadBucket"):
            return (
                "the bucket does not exist; create it, fix storage.s3.bucket, or set "
                "storage.s3.create_bucket"
            )
        if code in _DENIED:
            return (
                f"access denied ({code}); check the AWS credentials in the environment "
                "and the bucket policy"
            )
        return f"{code or 'error'}: {exc.response.get('Error', {}).get('Message', '')}".strip()
    return (
        f"cannot reach the endpoint ({type(exc).__name__}); check storage.s3.endpoint_url "
        "and that the store is running"
    )
