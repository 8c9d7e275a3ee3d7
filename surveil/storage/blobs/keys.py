"""Blob key and claim name rules every blob adapter shares, so no key escapes its root."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_CLAIM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def validate_key(key: str) -> PurePosixPath:
    """Check a blob key is a plain relative POSIX path, so no key can escape the root."""
    if not key or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid blob key {key!r}: empty, backslash or NUL")
    path = PurePosixPath(key)
    if path.is_absolute() or key.startswith("/"):
        raise ValueError(f"invalid blob key {key!r}: must be relative")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid blob key {key!r}: empty, '.' or '..' segment")
    if ":" in parts[0]:
        # A drive-like first segment ("C:") would be absolute on Windows.
        raise ValueError(f"invalid blob key {key!r}: drive-like prefix")
    return path


def validate_folder(prefix: str) -> str:
    """A folder key ('crops/' or 'crops/cam/'): a valid key with one trailing '/'."""
    bare = prefix.rstrip("/")
    validate_key(bare)
    return bare + "/"


def validate_claim_name(name: str) -> str:
    """Claim names become file names and lock keys: a short plain word."""
    if not _CLAIM_NAME.fullmatch(name):
        raise ValueError(f"invalid claim name {name!r}")
    return name
