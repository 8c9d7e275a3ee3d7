"""The search form: checked and turned into domain objects before anything runs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from surveil.domain import BBox, InputError, SearchFilters, parse_time, validate_camera_id
from surveil.search.audited import Example, SearchOptions
from surveil.vision.images import decode_untrusted, probe_image

MAX_FILTER_VALUES = 64
MAX_LABEL_LENGTH = 64
#: No camera frame is this wide or tall; larger coordinates are typos or probes, and
#: left unbounded they overflow OpenCV's 32-bit drawing (a 500, issue 9).
MAX_BOX_COORDINATE = 100_000


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The raw form fields (strings and numbers as FastAPI parsed them)."""

    image: bytes | None
    appearance_id: int | None
    keyframe_id: int | None
    box: str | None
    cameras: list[str]
    since: str | None
    until: str | None
    labels: list[str]
    min_score: float | None
    gap: float | None
    limit: int | None
    track_id: int | None = None
    rerank: bool | None = None


def parse_box(text: str) -> BBox:
    """`x1,y1,x2,y2` in keyframe pixels, x2 > x1 and y2 > y1; the one box parser of the API."""
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise InputError(f"box {text!r} must be four non-negative numbers x1,y1,x2,y2")
    if max(values) > MAX_BOX_COORDINATE:
        raise InputError(
            f"box {text!r} has a coordinate over {MAX_BOX_COORDINATE}; "
            "give keyframe pixels (see the keyframe's width and height)"
        )
    x1, y1, x2, y2 = values
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"box {text!r} must have x2 > x1 and y2 > y1")
    return (x1, y1, x2, y2)


def clamp_box(box: BBox, width: int, height: int, *, what: str) -> tuple[int, int, int, int]:
    """A parsed box in whole pixels cut to a width x height image; one wholly outside is refused."""
    x1, y1, x2, y2 = box
    left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
    right, bottom = min(width, math.ceil(x2)), min(height, math.ceil(y2))
    if right <= left or bottom <= top:
        raise InputError(
            f"box {','.join(f'{v:g}' for v in box)} lies outside the {width}x{height} {what}"
        )
    return left, top, right, bottom


def build_example(form: SearchForm, *, max_pixels: int) -> Example:
    """Exactly one of image, appearance_id, track_id, keyframe_id+box; the image checked."""
    given = [
        name
        for name, present in (
            ("image", form.image is not None),
            ("appearance_id", form.appearance_id is not None),
            ("track_id", form.track_id is not None),
            ("keyframe_id", form.keyframe_id is not None),
        )
        if present
    ]
    if len(given) != 1:
        raise InputError(
            "send exactly one of: image (a file), appearance_id, track_id, or keyframe_id with box"
            + (f"; got {', '.join(given)}" if given else "")
        )
    if form.box is not None and form.keyframe_id is None:
        raise InputError("box is only used with keyframe_id")
    if form.image is not None:
        header = probe_image(form.image, what="image")
        pixels = decode_untrusted(form.image, max_pixels=max_pixels, what="image")
        return Example(
            kind="image", image=pixels, image_bytes=form.image, image_format=header.format
        )
    if form.appearance_id is not None:
        return Example(
            kind="appearance", appearance_id=_positive(form.appearance_id, "appearance_id")
        )
    if form.track_id is not None:
        return Example(kind="track", track_id=_positive(form.track_id, "track_id"))
    if form.box is None:
        raise InputError("keyframe_id needs box=x1,y1,x2,y2 (the region to search by)")
    keyframe_id = _positive(form.keyframe_id, "keyframe_id")
    return Example(kind="keyframe_box", keyframe_id=keyframe_id, box=parse_box(form.box))


def build_options(
    form: SearchForm, *, max_results: int, default_min_score: float | None
) -> SearchOptions:
    """Filters and shaping, each value checked with a message naming the field."""
    if len(form.cameras) > MAX_FILTER_VALUES or len(form.labels) > MAX_FILTER_VALUES:
        raise InputError(f"at most {MAX_FILTER_VALUES} cameras and labels per search")
    for camera in form.cameras:
        validate_camera_id(camera)
    for label in form.labels:
        if not label or len(label) > MAX_LABEL_LENGTH or not label.isprintable():
            raise InputError(f"label {label[:MAX_LABEL_LENGTH]!r} is not a valid label")
    if form.limit is not None and not 1 <= form.limit <= max_results:
        raise InputError(f"limit must be between 1 and {max_results} (setting api.max_results)")
    if form.gap is not None and not (math.isfinite(form.gap) and 0 < form.gap <= 86_400):
        raise InputError("gap must be seconds between 0 and 86400")
    min_score = default_min_score if form.min_score is None else form.min_score
    if min_score is not None and not math.isfinite(min_score):
        raise InputError("min_score must be a number between -1 and 1")
    filters = SearchFilters(
        cameras=frozenset(form.cameras),
        since=parse_time(form.since, "since"),
        until=parse_time(form.until, "until"),
        labels=frozenset(form.labels),
        min_score=min_score,
    )
    return SearchOptions(
        filters=filters,
        label=form.labels[0] if form.labels else None,
        limit=form.limit,
        gap_seconds=form.gap,
        rerank=form.rerank,
    )


def _positive(value: int | None, name: str) -> int:
    if value is None or value < 1 or value > 2**63 - 1:
        raise InputError(f"{name} must be a positive id")
    return value
