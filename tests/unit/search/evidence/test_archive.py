"""Evidence archives on their own: hashes, the optional signature, and an escaped report."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

import pytest

from surveil.search.evidence.archive import SUMS, TamperedError, verify_archive, write_archive
from surveil.search.evidence.report import render_report

KEY = b"0123456789abcdef-site-key"
HOSTILE = '<script>alert("x")</script>'


def _manifest() -> dict[str, object]:
    item = {
        "appearance_id": 7,
        "camera_id": HOSTILE,
        "ts": "2026-03-01T12:00:00+00:00",
        "box": [1.0, 2.0, 30.0, 60.0],
        "label": "person",
        "score": 0.91,
        "crop": "crops/a7.jpg",
        "keyframe": None,
    }
    return {
        "kind": "sighting",
        "subject": {"id": 3},
        "exported_by": {"name": HOSTILE, "role": "operator"},
        "exported_at": "2026-03-02T00:00:00+00:00",
        "surveil_version": "test",
        "model_ids": ["m@1"],
        "missing": [],
        "items": [item],
    }


def _write(path: Path, key: bytes | None = None) -> Path:
    files = [("crops/a7.jpg", b"\xff\xd8 stored crop bytes \xff\xd9")]
    report = render_report(_manifest())
    write_archive(path, files, _manifest(), report, hmac_key=key)
    return path


def _rewrite(path: Path, out: Path, name: str, data: bytes, *, resum: bool) -> Path:
    """Copy the archive with one member replaced; `resum` recomputes SHA256SUMS too."""
    with zipfile.ZipFile(path) as src:
        members = {i.filename: src.read(i) for i in src.infolist()}
    members[name] = data
    if resum:
        lines = [
            f"{hashlib.sha256(d).hexdigest()}  {n}\n"
            for n, d in members.items()
            if not n.startswith(SUMS)
        ]
        members[SUMS] = "".join(lines).encode()
    with zipfile.ZipFile(out, "w") as dst:
        for n, d in members.items():
            dst.writestr(n, d)
    return out


def test_report_escapes_every_text_and_references_files_relatively() -> None:
    html = render_report(_manifest()).decode()
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert 'src="crops/a7.jpg"' in html and "http" not in html


def test_signed_archive_verifies_and_recomputed_hashes_do_not_fool_the_signature(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "e.zip", KEY)
    assert verify_archive(path, hmac_key=KEY).signed
    assert not verify_archive(path).signed  # without the key: hashes only
    forged = _rewrite(path, tmp_path / "f.zip", "crops/a7.jpg", b"other", resum=True)
    with pytest.raises(TamperedError, match=re.escape("crops/a7.jpg: SHA-256 in manifest.json")):
        verify_archive(forged)  # the manifest still holds the old hash
    # Forge manifest.json too: only the signature is left to catch it.
    with zipfile.ZipFile(forged) as z:
        manifest = z.read("manifest.json")
    good = hashlib.sha256(b"\xff\xd8 stored crop bytes \xff\xd9").hexdigest()
    edited = manifest.replace(good.encode(), hashlib.sha256(b"other").hexdigest().encode())
    both = _rewrite(forged, tmp_path / "g.zip", "manifest.json", edited, resum=True)
    assert (
        verify_archive(both).files == 3
    )  # crop, report.html, manifest.json  # consistent hashes: undetectable unsigned
    with pytest.raises(TamperedError, match="SHA256SUMS: signature does not match"):
        verify_archive(both, hmac_key=KEY)


def test_unsigned_archive_is_refused_when_a_key_is_set_and_junk_is_not_a_zip(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "e.zip")
    with pytest.raises(TamperedError, match=re.escape("SHA256SUMS.hmac: missing")):
        verify_archive(path, hmac_key=KEY)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(TamperedError, match="not a readable zip"):
        verify_archive(junk)
    extra = _rewrite(path, tmp_path / "x.zip", "notes.txt", b"added later", resum=False)
    with pytest.raises(TamperedError, match=re.escape("notes.txt: in the archive but not listed")):
        verify_archive(extra)
