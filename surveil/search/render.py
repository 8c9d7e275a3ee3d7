"""The search output contract (JSON) and a readable table, shared by CLI and API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from surveil.domain import Feedback, SearchHit, Sighting
from surveil.search.by_example import SearchResult, TruncatedReason
from surveil.search.path import camera_path, path_text, path_to_dict


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a 'Z': fixed width, so strings sort as times."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hit_to_dict(hit: SearchHit) -> dict[str, Any]:
    """One appearance as the documented JSON object."""
    app = hit.appearance
    return {
        "id": app.id,
        "camera_id": app.camera_id,
        "ts": iso(app.ts),
        "frame_index": app.frame_index,
        "label": app.label,
        "confidence": round(app.confidence, 4),
        "bbox": [round(v, 1) for v in app.bbox],
        "score": round(hit.score, 4),
        "keyframe_id": app.keyframe_id,
        "track_id": app.track_id,
    }


#: What an operator reads for each reason a result was cut, and what lifts the cut.
TRUNCATION_ADVICE: dict[TruncatedReason, str] = {
    "limit": (
        "results cut at the limit: more sightings matched than were returned; "
        "raise --limit or narrow the time window"
    ),
    "max_candidates": (
        "search stopped at search.max_candidates candidates while they still matched: "
        "more may exist; narrow the time window or cameras, or raise search.max_candidates"
    ),
}


def sightings_to_dict(
    sightings: Sequence[Sighting],
    *,
    truncated: bool = False,
    truncated_reason: TruncatedReason | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """`{"sightings": [...], "truncated", "warnings"}`: sightings by first_seen, hits by ts.

    A cut result also carries "truncated_reason" ("limit" or "max_candidates"); an
    uncut one leaves the key out, so its key set is the one consumers always knew.
    """
    body: dict[str, Any] = {
        "sightings": [
            {
                "camera_id": s.camera_id,
                "label": s.label,
                "first_seen": iso(s.first_seen),
                "last_seen": iso(s.last_seen),
                "best_score": round(s.best_score, 4),
                "appearances": [hit_to_dict(h) for h in s.hits],
                "track_id": s.track_id,
            }
            for s in sightings
        ],
        "truncated": truncated,
    }
    if truncated:
        body["truncated_reason"] = truncated_reason or "limit"
    body["warnings"] = list(warnings)
    return body


def result_to_dict(result: SearchResult, *, path: bool = False) -> dict[str, Any]:
    """A whole search result as the documented JSON object (with "path" when asked)."""
    body = sightings_to_dict(
        result.sightings,
        truncated=result.truncated,
        truncated_reason=result.truncated_reason,
        warnings=result.warnings,
    )
    if path:
        body["path"] = path_to_dict(camera_path(result.sightings), iso)
    return body


def result_table(result: SearchResult, *, path: bool = False) -> str:
    """The sightings table (and the path when asked), then any warning and cut notice."""
    lines = [sightings_table(result.sightings)]
    if path:
        lines += ["", path_text(camera_path(result.sightings))]
    if result.truncated:
        lines.append(TRUNCATION_ADVICE[result.truncated_reason or "limit"])
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def sightings_table(sightings: Sequence[Sighting]) -> str:
    """A fixed-width table an operator can read in a terminal."""
    if not sightings:
        return "no sightings matched"
    header = f"{'#':>3}  {'camera':<14} {'label':<10} {'first seen (UTC)':<23} "
    header += f"{'last seen (UTC)':<23} {'score':>6} {'hits':>5}  best crop"
    lines = [header, "-" * len(header)]
    for n, s in enumerate(sightings, 1):
        best = max(s.hits, key=lambda h: h.score).appearance
        lines.append(
            f"{n:>3}  {s.camera_id:<14.14} {s.label:<10.10} "
            f"{s.first_seen.strftime('%Y-%m-%d %H:%M:%S.%f')[:23]:<23} "
            f"{s.last_seen.strftime('%Y-%m-%d %H:%M:%S.%f')[:23]:<23} "
            f"{s.best_score:>6.3f} {len(s.hits):>5}  {best.crop_path}"
        )
    return "\n".join(lines)


def feedback_view(f: Feedback) -> dict[str, Any]:
    """One verdict as the API and `surveil feedback list --json` show it."""
    t = f.target
    return {
        "id": f.id,
        "ts": iso(f.ts),
        "by": f.key_name,
        "audit_id": t.audit_id,
        "rule_id": t.rule_id,
        "alert_id": t.alert_id,
        "track_id": t.track_id,
        "appearance_id": t.appearance_id,
        "space": f.space,
        "verdict": f.verdict,
        "score": None if f.score is None else round(f.score, 4),
    }
