"""What goes into an evidence archive: the appearances, their files as stored, the query.

Files are the BlobStore's bytes, never re-encoded: the archive's hashes are then the
hashes of what the system kept. Member names come from ids and hashes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from surveil.domain import AuditEntry, Sighting, StoredAppearance
from surveil.ports import BlobStore, Catalog
from surveil.search.path import camera_path, path_to_dict

#: Extensions a stored image may keep in the archive; anything else becomes ".bin".
_IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "bmp"})


def extension(key: str) -> str:
    """The blob key's image extension, from a fixed list (never free text from a key)."""
    ext = key.rsplit(".", 1)[-1].lower() if "." in key else ""
    return ext if ext in _IMAGE_EXTENSIONS else "bin"


@dataclass
class Bundle:
    """The files and manifest entries of one export, filled item by item."""

    catalog: Catalog
    blobs: BlobStore
    files: dict[str, bytes] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    model_ids: set[str] = field(default_factory=set)

    def blob(self, key: str | None, name: str) -> str | None:
        """Add the stored blob `key` as member `name`; None (noted as missing) if it is gone."""
        if name in self.files:
            return name
        if not key:
            self.missing.append(name)
            return None
        try:
            self.files[name] = self.blobs.get(key)
        except FileNotFoundError:
            self.missing.append(name)
            return None
        return name

    def add(self, appearance: StoredAppearance, score: float | None) -> None:
        """One appearance: its crop, its keyframe (once per keyframe) and what they show."""
        a = appearance
        crop = self.blob(a.crop_path, f"crops/a{a.id}.{extension(a.crop_path)}")
        frame = self.catalog.get_keyframe(keyframe_id=a.keyframe_id)
        keyframe = None
        if frame is not None and frame.image_path:
            name = f"keyframes/k{a.keyframe_id}.{extension(frame.image_path)}"
            keyframe = self.blob(frame.image_path, name)
        elif f"keyframes/k{a.keyframe_id}" not in self.missing:
            self.missing.append(f"keyframes/k{a.keyframe_id}")
        self.model_ids.add(a.model_id)
        self.items.append(
            {
                "appearance_id": a.id,
                "track_id": a.track_id,
                "camera_id": a.camera_id,
                "ts": a.ts.isoformat(),
                "frame_index": a.frame_index,
                "keyframe_id": a.keyframe_id,
                "label": a.label,
                "confidence": round(float(a.confidence), 6),
                "box": [round(float(v), 2) for v in a.bbox],
                "score": None if score is None else round(float(score), 6),
                "space": a.space,
                "model_id": a.model_id,
                "crop": crop,
                "keyframe": keyframe,
            }
        )


def audit_record(found: AuditEntry) -> dict[str, Any]:
    """An audit entry as the manifest shows it (JSON-ready)."""
    e = found.entry
    return {
        "id": found.id,
        "ts": found.ts.isoformat(),
        "action": e.action,
        "status": e.status,
        "key_name": e.key_name,
        "role": e.role,
        "client": e.client,
        "query_kind": e.query_kind,
        "crop_sha256": e.crop_sha256,
        "appearance_id": e.appearance_id,
        "track_id": e.track_id,
        "keyframe_id": e.keyframe_id,
        "box": None if e.box is None else list(e.box),
        "filters": e.filters,
        "result_count": e.result_count,
        "detail": e.detail,
    }


def path_of(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The path across cameras the exported tracks make (legs, hops, overlaps).

    Built from the items in the archive, so every time in it is an item's time: a track's
    leg spans its exported members, as the search's sighting spanned them (same filters).
    """
    spans: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        if item["track_id"] is not None:
            spans.setdefault(int(item["track_id"]), []).append(item)
    sightings = [
        Sighting(
            camera_id=members[0]["camera_id"],
            label=members[0]["label"],
            first_seen=min(datetime.fromisoformat(m["ts"]) for m in members),
            last_seen=max(datetime.fromisoformat(m["ts"]) for m in members),
            best_score=max((m["score"] or 0.0) for m in members),
            hits=(),
            track_id=track,
        )
        for track, members in spans.items()
    ]
    return path_to_dict(camera_path(sightings), lambda ts: ts.isoformat())
