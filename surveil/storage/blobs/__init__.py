"""Blob stores behind the `BlobStore` port: local files (default) or an S3 bucket.

`FileBlobStore` (local.py) keeps every JPEG under storage.root; `S3BlobStore` (s3.py,
imported only when configured, so boto3 loads only then) keeps them in a bucket. Both
validate keys the same way (keys.py) and decide claims through claims.py.
"""

from __future__ import annotations

from surveil.storage.blobs.claims import CLAIMS, FlockClaims, PgClaims
from surveil.storage.blobs.keys import validate_key
from surveil.storage.blobs.local import WRITE_THREADS, FileBlobStore

__all__ = ["CLAIMS", "WRITE_THREADS", "FileBlobStore", "FlockClaims", "PgClaims", "validate_key"]
