"""Evidence archives: one zip whose every file is hashed, the hash list optionally signed.

Layout: the exported files (crops/, keyframes/, query/), report.html, manifest.json (what
each file shows, and its SHA-256), SHA256SUMS (every other member's SHA-256, the format
`sha256sum -c` reads) and, when a key is set, SHA256SUMS.hmac (HMAC-SHA256 of SHA256SUMS).
Hashes alone catch damage and naive edits; only the signature catches someone who edits a
file and recomputes the hashes. Member names are built by the exporter from ids and
hashes, never from input, and an archive is written to a temp file and renamed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surveil.domain import InputError, SurveilError
from surveil.files import replacing

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.hmac"
#: Members the hash list does not (cannot) cover: itself and its signature.
_UNHASHED = frozenset({SUMS, SIGNATURE})


class TamperedError(SurveilError):
    """An archive that fails verification: names the first bad file and why."""


def sha256(data: bytes) -> str:
    """Hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def _sums_text(members: Sequence[tuple[str, bytes]]) -> bytes:
    return "".join(f"{sha256(data)}  {name}\n" for name, data in members).encode()


def _sign(key: bytes, sums: bytes) -> bytes:
    return (hmac.new(key, sums, hashlib.sha256).hexdigest() + "\n").encode()


def write_archive(
    path: Path,
    files: Sequence[tuple[str, bytes]],
    manifest: dict[str, Any],
    report: bytes,
    *,
    hmac_key: bytes | None = None,
) -> None:
    """Write the zip atomically: files, report.html, manifest.json, SHA256SUMS (+ .hmac).

    `manifest["files"]` gains each exported file's SHA-256 and size (report.html's too).
    """
    named = [*files, ("report.html", report)]
    names = [name for name, _ in named]
    if len(set(names)) != len(names) or {MANIFEST, *_UNHASHED} & set(names):
        raise ValueError("duplicate or reserved member name in an evidence archive")
    manifest = {
        **manifest,
        "files": {name: {"sha256": sha256(data), "bytes": len(data)} for name, data in named},
    }
    body = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
    hashed = [*named, (MANIFEST, body)]
    sums = _sums_text(hashed)
    members = [*hashed, (SUMS, sums)]
    if hmac_key is not None:
        members.append((SIGNATURE, _sign(hmac_key, sums)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, data in members:
            # Images are stored as they are (already compressed); text is deflated.
            kind = zipfile.ZIP_DEFLATED if name.endswith((".json", ".html")) else 0
            archive.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, kind)


@dataclass(frozen=True, slots=True)
class Verified:
    """What verification checked: files hashed, and whether a signature was checked."""

    files: int
    signed: bool
    manifest: dict[str, Any]


def _read_members(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except FileNotFoundError:
        raise InputError(f"no archive at {path}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise TamperedError(f"{path} is not a readable zip archive ({exc})") from None


def _parse_sums(text: bytes) -> dict[str, str]:
    listed: dict[str, str] = {}
    for line in text.decode("utf-8", "replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or name in listed:
            raise TamperedError(f"{SUMS}: malformed line {line[:100]!r}")
        listed[name] = digest
    return listed


def _check_signature(members: dict[str, bytes], hmac_key: bytes | None) -> bool:
    if hmac_key is None:
        return False
    given = members.get(SIGNATURE)
    if given is None:
        raise TamperedError(f"{SIGNATURE}: missing, but a signing key is set (unsigned archive)")
    if not hmac.compare_digest(given, _sign(hmac_key, members[SUMS])):
        raise TamperedError(f"{SUMS}: signature does not match (edited, or another key)")
    return True


def verify_archive(path: Path, *, hmac_key: bytes | None = None) -> Verified:
    """Re-check every hash (and, given a key, the signature); TamperedError names the bad file."""
    members = _read_members(path)
    if SUMS not in members:
        raise TamperedError(f"{SUMS}: missing from the archive")
    listed = _parse_sums(members[SUMS])
    for name in sorted(set(members) - _UNHASHED - set(listed)):
        raise TamperedError(f"{name}: in the archive but not listed in {SUMS}")
    for name, digest in listed.items():
        if name not in members:
            raise TamperedError(f"{name}: listed in {SUMS} but missing from the archive")
        if sha256(members[name]) != digest:
            raise TamperedError(f"{name}: SHA-256 does not match {SUMS} (file changed)")
    signed = _check_signature(members, hmac_key)
    if MANIFEST not in listed:
        raise TamperedError(f"{MANIFEST}: not listed in {SUMS}")
    manifest = json.loads(members[MANIFEST])
    described = manifest.get("files", {})
    for name in sorted(set(listed) - {MANIFEST} - set(described)):
        raise TamperedError(f"{name}: listed in {SUMS} but not described in {MANIFEST}")
    for name, info in described.items():
        if listed.get(name) != info.get("sha256"):
            raise TamperedError(f"{name}: SHA-256 in {MANIFEST} does not match {SUMS}")
    return Verified(files=len(listed), signed=signed, manifest=manifest)
