"""JSON shapes of API objects, shared by the routes and the CLI's --json output.

No FastAPI here: `surveil keys list --json` prints exactly what `GET /api/v1/keys` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from surveil.domain import (
    ApiKeyInfo,
    AuditEntry,
    CameraInfo,
    CameraStats,
    KeyframeRecord,
    StoredAppearance,
    mask_credentials,
)
from surveil.search.by_example import SearchResult
from surveil.search.render import hit_to_dict, iso, result_to_dict
from surveil.storage.health import CameraHealth
from surveil.storage.leases import CameraLease, WorkerInfo

API = "/api/v1"


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else iso(ts)


def crop_url(appearance_id: int) -> str:
    return f"{API}/appearances/{appearance_id}/crop.jpg"


def keyframe_url(keyframe_id: int) -> str:
    return f"{API}/keyframes/{keyframe_id}.jpg"


def with_urls(item: dict[str, Any]) -> dict[str, Any]:
    """An appearance object plus where its crop and keyframe images are served."""
    item["crop_url"] = crop_url(int(item["id"]))
    item["keyframe_url"] = keyframe_url(int(item["keyframe_id"]))
    return item


def search_view(result: SearchResult, *, path: bool = False) -> dict[str, Any]:
    """`surveil search --json`'s object, each appearance with crop_url and keyframe_url."""
    body = result_to_dict(result, path=path)
    for sighting in body["sightings"]:
        sighting["appearances"] = [with_urls(a) for a in sighting["appearances"]]
    return body


def appearance_view(app: StoredAppearance) -> dict[str, Any]:
    """One stored appearance: the search object without a score."""
    from surveil.domain import SearchHit

    item = hit_to_dict(SearchHit(app, 0.0))
    del item["score"]
    return with_urls(item)


def keyframe_view(kf: KeyframeRecord, appearances: Sequence[StoredAppearance]) -> dict[str, Any]:
    """A keyframe with every appearance found on it."""
    out = keyframe_summary(kf, len(appearances))
    out["appearances"] = [appearance_view(a) for a in appearances]
    return out


def keyframe_summary(kf: KeyframeRecord, n_appearances: int) -> dict[str, Any]:
    """A keyframe in a camera's list: the appearances as a count."""
    return {
        "id": kf.id,
        "camera_id": kf.camera_id,
        "ts": iso(kf.ts),
        "frame_index": kf.frame_index,
        "width": kf.width,
        "height": kf.height,
        "image_url": keyframe_url(kf.id) if kf.image_path else None,
        "appearances": n_appearances,
    }


def health_view(h: CameraHealth) -> dict[str, Any]:
    """A live camera's health as `surveil run` last wrote it (`cameras status --json`)."""
    return {
        "id": h.camera_id,
        "state": h.state,
        "last_frame_at": _iso(h.last_frame_at),
        "fps": h.fps,
        "keyframes": h.keyframes,
        "keyframes_per_s": h.keyframes_per_s,
        "drops": h.drops,
        "reconnects": h.reconnects,
        "last_error": h.last_error,
        "updated_at": _iso(h.updated_at),
    }


def camera_view(
    cam: CameraInfo,
    stats: CameraStats | None,
    health: CameraHealth | None = None,
    lease: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A camera with what the catalog holds for it; credentials in its URL are masked."""
    return {
        "id": cam.id,
        "name": cam.name,
        "enabled": cam.enabled,
        "tags": list(cam.tags),
        "lease": lease,
        "url": None if cam.url is None else mask_credentials(cam.url),
        "created_at": iso(cam.created_at),
        "keyframes": stats.keyframes if stats else 0,
        "appearances": stats.appearances if stats else 0,
        "first_ts": _iso(stats.first_ts) if stats else None,
        "last_ts": _iso(stats.last_ts) if stats else None,
        "health": None if health is None else health_view(health),
    }


def lease_views(
    leases: Sequence[CameraLease], workers: Sequence[WorkerInfo], now: datetime
) -> dict[str, dict[str, Any]]:
    """Per camera id: which worker reads it, on which host, since when, until when."""
    hosts = {w.id: w.host for w in workers}
    return {
        lease.camera_id: {
            "worker": lease.owner,
            "host": hosts.get(lease.owner),
            "acquired_at": iso(lease.acquired_at),
            "age_seconds": round((now - lease.acquired_at).total_seconds(), 1),
            "lease_until": iso(lease.lease_until),
            "live": lease.lease_until >= now,
        }
        for lease in leases
    }


def worker_views(
    workers: Sequence[WorkerInfo], leases: Sequence[CameraLease], now: datetime
) -> list[dict[str, Any]]:
    """Live workers (`surveil run` processes) with the cameras each holds and its pins."""
    return [
        {
            "id": w.id,
            "host": w.host,
            "pid": w.pid,
            "started_at": iso(w.started_at),
            "heartbeat_at": iso(w.heartbeat_at),
            "index_backend": w.index_backend,
            "cameras": sorted(
                x.camera_id for x in leases if x.owner == w.id and x.lease_until >= now
            ),
            "pinned_cameras": list(w.cameras),
            "pinned_tags": list(w.camera_tags),
        }
        for w in workers
    ]


def key_view(key: ApiKeyInfo) -> dict[str, Any]:
    """A key as listed: never the key itself."""
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "revoked_at": _iso(key.revoked_at),
    }


def audit_view(row: AuditEntry) -> dict[str, Any]:
    """An audit entry; the stored crop is served by id, never by its path."""
    e = row.entry
    return {
        "id": row.id,
        "ts": iso(row.ts),
        "key_id": e.key_id,
        "key_name": e.key_name,
        "role": e.role,
        "action": e.action,
        "status": e.status,
        "query_kind": e.query_kind,
        "crop_sha256": e.crop_sha256,
        "crop_url": f"{API}/audit/{row.id}/crop.jpg" if e.crop_path else None,
        "appearance_id": e.appearance_id,
        "track_id": e.track_id,
        "keyframe_id": e.keyframe_id,
        "box": list(e.box) if e.box else None,
        "filters": e.filters,
        "result_count": e.result_count,
        "client": e.client,
        "detail": e.detail,
    }
