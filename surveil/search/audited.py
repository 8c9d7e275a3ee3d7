"""Search as the API runs it: resolve the example, search, and leave an audit row either way.

Surveillance search without a trail is not acceptable to the people who run these
systems: every search, successful or refused, records who asked, with which crop (its
SHA-256 and a stored copy), which filters, and how many appearances came back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import structlog

from surveil.domain import BBox, Image, NewAuditEntry, SearchFilters, SurveilError
from surveil.ports import AccessStore, BlobStore, Catalog
from surveil.search.by_example import SearchResult, Stopwatch
from surveil.search.service import SearchService
from surveil.vision.crops import encode_jpeg

log = structlog.get_logger(__name__)

QueryKind = Literal["image", "appearance", "track", "keyframe_box"]
#: Extension of the stored copy by format; the key is built from the hash, never from input.
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp"}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is searching: the API key (or the CLI user) and where the request came from."""

    key_id: int | None
    name: str
    role: str
    client: str | None = None


@dataclass(frozen=True, slots=True)
class Example:
    """The example to search by: exactly one of an image, an appearance, a track, a box."""

    kind: QueryKind
    image: Image | None = None  # decoded, for kind="image"
    image_bytes: bytes | None = None
    image_format: str = "JPEG"
    appearance_id: int | None = None
    track_id: int | None = None
    keyframe_id: int | None = None
    box: BBox | None = None


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """The operator's filters and shaping, as given."""

    filters: SearchFilters
    label: str | None = None
    limit: int | None = None
    gap_seconds: float | None = None
    #: Re-rank the candidates (True/False), or as search.rerank.mode says (None).
    rerank: bool | None = None


@dataclass(frozen=True, slots=True)
class AuditedResult:
    """The search result and the audit row written for it."""

    result: SearchResult
    audit_id: int


def crop_key(digest: str, ext: str) -> str:
    """Blob key of an audited crop: content-addressed, so repeats share one file."""
    return f"audit/{digest[:2]}/{digest}.{ext}"


def filters_record(options: SearchOptions) -> dict[str, Any]:
    """The filters as the audit trail stores them (JSON-ready, only what was set)."""
    f = options.filters
    out: dict[str, Any] = {
        "cameras": sorted(f.cameras),
        "labels": sorted(f.labels),
        "since": f.since.isoformat() if f.since else None,
        "until": f.until.isoformat() if f.until else None,
        "min_score": f.min_score,
        "limit": options.limit,
        "gap": options.gap_seconds,
        "label": options.label,
        "rerank": options.rerank,
    }
    return {k: v for k, v in out.items() if v not in (None, [])}


class AuditedSearch:
    """Runs searches for an actor and records each in the audit trail."""

    def __init__(
        self,
        *,
        search: SearchService,
        access: AccessStore,
        blobs: BlobStore,
        catalog: Catalog,
        jpeg_quality: int = 90,
        describe: Callable[[SurveilError], str] = str,
    ) -> None:
        """`describe` words a refusal for the trail (the API adds its HTTP status)."""
        self._search = search
        self._describe = describe
        self._access = access
        self._blobs = blobs
        self._catalog = catalog
        self._jpeg_quality = jpeg_quality

    def run(self, actor: Actor, example: Example, options: SearchOptions) -> AuditedResult:
        """Search, then audit; a refused search is audited with its error and re-raised.

        The result's timings gain what the example cost to prepare (embed: cutting a
        keyframe box) and what the trail cost (audit: fetching and keeping the crop copy,
        writing the row).
        """
        crop: tuple[str, str] | None = None
        clock = Stopwatch()
        try:
            # An uploaded crop or a keyframe box is the example itself; a stored
            # appearance's or track's crop is fetched only for the trail.
            with clock.stage("embed" if example.kind in ("image", "keyframe_box") else "audit"):
                image, data, ext = self._resolve(example)
            with clock.stage("audit"):
                crop = None if data is None else self._keep(data, ext)
            result = self._dispatch(example, image, options)
        except SurveilError as exc:
            detail = self._describe(exc)
            self._audit(actor, example, options, crop, status="refused", detail=detail)
            raise
        except Exception as exc:
            self._audit(actor, example, options, crop, status="error", detail=type(exc).__name__)
            raise
        count = sum(len(s.hits) for s in result.sightings)
        # Which sightings came back, so an evidence export shows what the operator saw.
        hits = tuple((s.track_id, s.best_score) for s in result.sightings if s.track_id)
        with clock.stage("audit"):
            audit_id = self._audit(
                actor, example, options, crop, status="ok", count=count, hits=hits
            )
        spent = clock.times()
        timings = replace(
            result.timings,
            embed=result.timings.embed + spent.embed,
            audit=result.timings.audit + spent.audit,
        )
        result = replace(result, timings=timings)
        log.info(
            "search.done",
            audit_id=audit_id,
            actor=actor.name,
            kind=example.kind,
            sightings=len(result.sightings),
            appearances=count,
            truncated=result.truncated_reason,
            seconds=round(result.seconds, 4),
            **{f"{stage}_ms": ms for stage, ms in timings.ms().items()},
        )
        return AuditedResult(result, audit_id)

    def _resolve(self, example: Example) -> tuple[Image | None, bytes | None, str]:
        """The example as (image to embed, crop bytes to keep, their extension)."""
        if example.kind == "image":
            assert example.image_bytes is not None
            ext = _EXTENSIONS.get(example.image_format, "img")
            return example.image, example.image_bytes, ext
        if example.kind == "keyframe_box":
            assert example.keyframe_id is not None and example.box is not None
            image = self._search.keyframe_crop(example.keyframe_id, example.box)
            return image, encode_jpeg(image, self._jpeg_quality), "jpg"
        if example.kind == "track":
            assert example.track_id is not None
            found = self._catalog.tracks([example.track_id])
            best = found[0].best_appearance_id if found else None
            stored = self._catalog.appearances([best]) if best is not None else []
        else:
            assert example.appearance_id is not None
            stored = self._catalog.appearances([example.appearance_id])
        if not stored:
            return None, None, "jpg"  # the search itself reports the unknown id
        try:
            return None, self._blobs.get(stored[0].crop_path), "jpg"
        except FileNotFoundError:
            return None, None, "jpg"

    def _dispatch(
        self, example: Example, image: Image | None, options: SearchOptions
    ) -> SearchResult:
        kwargs: dict[str, Any] = {
            "filters": options.filters,
            "limit": options.limit,
            "gap_seconds": options.gap_seconds,
            "rerank": options.rerank,
        }
        if example.kind == "appearance":
            assert example.appearance_id is not None
            return self._search.by_appearance(example.appearance_id, **kwargs)
        if example.kind == "track":
            assert example.track_id is not None
            return self._search.by_track(example.track_id, **kwargs)
        assert image is not None
        return self._search.by_image(image, label=options.label, **kwargs)

    def _keep(self, data: bytes, ext: str) -> tuple[str, str]:
        """Store the crop this search used; returns (sha256, blob key)."""
        digest = hashlib.sha256(data).hexdigest()
        key = crop_key(digest, ext)
        if not self._blobs.exists(key):
            self._blobs.put(key, data)
        return digest, key

    def _audit(
        self,
        actor: Actor,
        example: Example,
        options: SearchOptions,
        crop: tuple[str, str] | None,
        *,
        status: str,
        count: int | None = None,
        detail: str | None = None,
        hits: tuple[tuple[int, float], ...] = (),
    ) -> int:
        return self._access.record(
            NewAuditEntry(
                action="search",
                key_id=actor.key_id,
                key_name=actor.name,
                role=actor.role,
                status=status,
                query_kind=example.kind,
                crop_sha256=crop[0] if crop else None,
                crop_path=crop[1] if crop else None,
                appearance_id=example.appearance_id,
                keyframe_id=example.keyframe_id,
                track_id=example.track_id,
                box=example.box,
                filters=filters_record(options),
                result_count=count,
                client=actor.client,
                detail=detail,
                hits=hits,
            )
        )


def bounded(given: Mapping[str, Any], *, keys: int = 32, chars: int = 200) -> dict[str, Any]:
    """Input as given, cut to a size the trail can hold whatever a client sends."""
    out: dict[str, Any] = {}
    for key, value in list(given.items())[:keys]:
        if isinstance(value, list):
            out[str(key)[:chars]] = [str(v)[:chars] for v in value[:keys]]
        elif value is None or isinstance(value, bool | int | float):
            out[str(key)[:chars]] = value
        else:
            out[str(key)[:chars]] = str(value)[:chars]
    return out


def record_refusal(
    access: AccessStore,
    actor: Actor,
    *,
    reason: str,
    given: Mapping[str, Any],
    kind: str | None = None,
    status: str = "refused",
    action: str = "search",
) -> int:
    """Audit a search that ended before it ran (role, input, size, type): who, why, given."""
    return access.record(
        NewAuditEntry(
            action=action,
            key_id=actor.key_id,
            key_name=actor.name,
            role=actor.role,
            status=status,
            query_kind=kind,
            filters=bounded(given),
            client=actor.client,
            detail=reason[:1000],
        )
    )


def audit_rule_test(
    access: AccessStore,
    actor: Actor,
    given: Mapping[str, Any],
    *,
    status: str,
    count: int | None = None,
    detail: str | None = None,
) -> int:
    """Audit a rule's dry run: it searches the catalog for the rule's examples."""
    return access.record(
        NewAuditEntry(
            action="rule_test",
            key_id=actor.key_id,
            key_name=actor.name,
            role=actor.role,
            status=status,
            filters=bounded(given),
            result_count=count,
            client=actor.client,
            detail=None if detail is None else detail[:1000],
        )
    )
