"""Recorded media -> keyframes -> detections -> embeddings -> catalog + index.

Each batch of keyframes is detected and embedded together, its files written, then
committed to the catalog in ONE transaction, and only then added to the vector index.
The catalog is the source of truth: a crash after the commit but before the index is
saved is repaired by reconciliation on the next start; a failure before the commit
removes the batch's files, so nothing half-done remains.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import structlog
from tqdm import tqdm

from surveil.config import CropSettings, IngestSettings, KeyframeSettings
from surveil.domain import (
    AlreadyIngestedError,
    Crop,
    Frame,
    IngestStats,
    InputError,
    Keyframe,
    NewAppearance,
    NewKeyframe,
    Space,
    Vectors,
    space_for,
)
from surveil.ingest.keyframes import KeyframeSelector
from surveil.ports import BlobStore, Catalog, Detector, Embedder, FrameSource, VectorIndex
from surveil.vision.crops import cut_crops, encode_jpeg, thumbnail

log = structlog.get_logger(__name__)

#: Save the vector index after this many new appearances, bounding what a crash
#: leaves for reconciliation to redo.
INDEX_SAVE_EVERY = 20_000


@dataclass
class StageTimer:
    """Wall seconds per pipeline stage, so benchmarks can say where time goes."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


@dataclass(frozen=True)
class IngestOptions:
    """Per-run choices from the command line."""

    camera_id: str
    all_frames: bool = False
    progress: bool = False


def keyframe_key(camera_id: str, source_id: int, frame_index: int) -> str:
    """Deterministic blob key, so a resumed ingest overwrites rather than orphans files."""
    return f"keyframes/{camera_id}/{source_id}/{frame_index:08d}.jpg"


def crop_key(camera_id: str, source_id: int, frame_index: int, n: int) -> str:
    """Deterministic blob key for the n-th crop of a keyframe."""
    return f"crops/{camera_id}/{source_id}/{frame_index:08d}_{n:03d}.jpg"


class IngestPipeline:
    """Runs one recorded source through the models into the catalog and the index."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        index: VectorIndex,
        blobs: BlobStore,
        detector: Detector,
        embedders: Mapping[Space, Embedder],
        person_labels: Sequence[str],
        keyframes: KeyframeSettings,
        crops: CropSettings,
        ingest: IngestSettings,
        jpeg_quality: int,
        keep_keyframes: bool,
    ) -> None:
        self._catalog = catalog
        self._index = index
        self._blobs = blobs
        self._detector = detector
        self._embedders = embedders
        self._person_labels = frozenset(person_labels)
        self._keyframe_settings = keyframes
        self._crops = crops
        self._ingest = ingest
        self._jpeg_quality = jpeg_quality
        self._keep_keyframes = keep_keyframes
        self.timer = StageTimer()

    def run(self, source: FrameSource, options: IngestOptions) -> IngestStats:
        """Ingest a whole source; refuses one already complete, resumes one cut short."""
        info = source.info
        self._catalog.ensure_camera(options.camera_id)
        record = self._catalog.open_source(
            camera_id=options.camera_id,
            uri=info.uri,
            fingerprint=info.fingerprint,
            start=info.start,
            fps=info.fps,
        )
        if record.complete:
            raise AlreadyIngestedError(
                f"{info.uri} was already ingested for camera '{options.camera_id}' "
                f"(source #{record.id}); re-ingesting the same content is refused"
            )
        resume_after = record.last_frame_index
        if resume_after is not None:
            log.warning("ingest.resume", source_id=record.id, after_frame=resume_after)
        self.timer = StageTimer()
        selector = KeyframeSelector(self._keyframe_settings, all_frames=options.all_frames)
        frames_read = keyframes = appearances = 0
        since_save = 0
        batch: list[Keyframe] = []
        bar = tqdm(
            total=info.frame_count,
            unit="frame",
            desc=f"ingest {options.camera_id}",
            disable=not options.progress,
            dynamic_ncols=True,
        )
        try:
            for frame in self._timed_frames(source):
                frames_read += 1
                bar.update(1)
                if resume_after is not None and frame.index <= resume_after:
                    continue
                with self.timer.stage("select"):
                    kept = selector.consider(frame)
                if kept is None:
                    continue
                batch.append(kept)
                if len(batch) >= self._ingest.batch_size:
                    appearances += self._process(batch, record.id, options.camera_id)
                    keyframes += len(batch)
                    since_save += len(batch)
                    batch = []
                    bar.set_postfix(keyframes=keyframes, appearances=appearances)
                if since_save and appearances >= INDEX_SAVE_EVERY:
                    self._save_index()
                    since_save = 0
            if batch:
                appearances += self._process(batch, record.id, options.camera_id)
                keyframes += len(batch)
        finally:
            bar.close()
        if frames_read == 0:
            raise InputError(
                f"{info.uri}: no frame could be decoded "
                f"({source.corrupt_frames} corrupt); is it a video or an image sequence?"
            )
        self._save_index()
        self._catalog.finish_source(source_id=record.id, frames_read=frames_read)
        return IngestStats(
            source_id=record.id,
            frames_read=frames_read,
            keyframes=keyframes,
            appearances=appearances,
            corrupt_frames=source.corrupt_frames,
            resumed_from=resume_after,
            seconds=dict(self.timer.seconds),
        )

    def _timed_frames(self, source: FrameSource) -> Iterator[Frame]:
        frames = source.frames()
        while True:
            with self.timer.stage("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            yield frame

    def _save_index(self) -> None:
        with self.timer.stage("index_save"):
            self._index.save()

    def _process(self, batch: Sequence[Keyframe], source_id: int, camera_id: str) -> int:
        """Detect, crop, embed, write files, commit, index: one batch, all or nothing."""
        with self.timer.stage("detect"):
            detections = self._detector.detect([k.frame.image for k in batch])
        with self.timer.stage("crop"):
            crops = [
                cut_crops(
                    k.frame.image,
                    d,
                    padding=self._crops.padding,
                    min_size=self._crops.min_size,
                )
                for k, d in zip(batch, detections, strict=True)
            ]
        vectors = self._embed(crops)
        written: list[str] = []
        try:
            with self.timer.stage("files"):
                new = self._new_keyframes(batch, crops, vectors, source_id, camera_id, written)
            with self.timer.stage("catalog"):
                ids = self._catalog.add_keyframes(new)
        except BaseException:
            for key in written:
                self._blobs.delete(key)
            raise
        with self.timer.stage("index_add"):
            self._add_to_index(new, ids)
        return sum(len(i) for i in ids)

    def _embed(self, crops: Sequence[Sequence[Crop]]) -> list[list[tuple[Space, Vectors, str]]]:
        """Embed every crop of the batch, one model call per space."""
        by_space: dict[Space, list[tuple[int, int]]] = defaultdict(list)
        for k, frame_crops in enumerate(crops):
            for n, crop in enumerate(frame_crops):
                by_space[space_for(crop.label, self._person_labels)].append((k, n))
        out: list[list[tuple[Space, Vectors, str]]] = [
            [("general", np.empty(0, np.float32), "")] * len(c) for c in crops
        ]
        for space, slots in by_space.items():
            embedder = self._embedders[space]
            with self.timer.stage(f"embed_{space}"):
                matrix = embedder.embed([crops[k][n].image for k, n in slots])
            for (k, n), vec in zip(slots, matrix, strict=True):
                out[k][n] = (space, vec, embedder.model_id)
        return out

    def _new_keyframes(
        self,
        batch: Sequence[Keyframe],
        crops: Sequence[Sequence[Crop]],
        vectors: Sequence[Sequence[tuple[Space, Vectors, str]]],
        source_id: int,
        camera_id: str,
        written: list[str],
    ) -> list[NewKeyframe]:
        """Write the batch's JPEGs (recording each key) and describe the rows to insert."""
        out = []
        for kf, frame_crops, frame_vecs in zip(batch, crops, vectors, strict=True):
            frame = kf.frame
            image_path = None
            if self._keep_keyframes:
                image_path = keyframe_key(camera_id, source_id, frame.index)
                self._put(image_path, encode_jpeg(frame.image, self._jpeg_quality), written)
            apps = []
            for n, (crop, (space, vec, model_id)) in enumerate(
                zip(frame_crops, frame_vecs, strict=True)
            ):
                key = crop_key(camera_id, source_id, frame.index, n)
                small = thumbnail(crop.image, self._crops.thumbnail_max_side)
                self._put(key, encode_jpeg(small, self._jpeg_quality), written)
                apps.append(
                    NewAppearance(
                        bbox=crop.bbox,
                        label=crop.label,
                        confidence=crop.confidence,
                        space=space,
                        embedding=vec,
                        model_id=model_id,
                        crop_path=key,
                    )
                )
            h, w = frame.image.shape[:2]
            out.append(
                NewKeyframe(
                    camera_id=camera_id,
                    source_id=source_id,
                    frame_index=frame.index,
                    ts=frame.ts,
                    width=w,
                    height=h,
                    image_path=image_path,
                    appearances=tuple(apps),
                )
            )
        return out

    def _put(self, key: str, data: bytes, written: list[str]) -> None:
        self._blobs.put(key, data)
        written.append(key)

    def _add_to_index(self, new: Sequence[NewKeyframe], ids: Sequence[Sequence[int]]) -> None:
        """Add the committed appearances to the index, one call per space."""
        grouped: dict[Space, tuple[list[int], list[Vectors], list[date]]] = defaultdict(
            lambda: ([], [], [])
        )
        for kf, kf_ids in zip(new, ids, strict=True):
            for app, app_id in zip(kf.appearances, kf_ids, strict=True):
                g = grouped[app.space]
                g[0].append(app_id)
                g[1].append(app.embedding)
                g[2].append(kf.ts.date())
        for space, (space_ids, vecs, days) in grouped.items():
            self._index.add(
                space,
                np.asarray(space_ids, dtype=np.int64),
                np.ascontiguousarray(np.stack(vecs), dtype=np.float32),
                days,
            )
