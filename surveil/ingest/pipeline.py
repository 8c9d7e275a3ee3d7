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
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import structlog
from tqdm import tqdm

from surveil import telemetry
from surveil.config import CropSettings, IngestSettings, KeyframeSettings, TrackingSettings
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
    validate_camera_id,
)
from surveil.ingest.batches import BatchKeys, PreparedBatch
from surveil.ingest.keyframes import KeyframeSelector
from surveil.ingest.leftovers import claimed, remove_leftovers
from surveil.ingest.tracks import Assigned, IngestTracks, Plan, index_tracks
from surveil.ports import (
    BlobStore,
    Catalog,
    Detector,
    Embedder,
    FrameSource,
    SourceRecord,
    VectorIndex,
)
from surveil.timing import StageTimer
from surveil.vision.crops import cut_crops, encode_jpeg, thumbnail

log = structlog.get_logger(__name__)

#: One crop's embedding: its space, the unit vector, and the model that made it.
Embedding = tuple[Space, Vectors, str]

#: Save the vector index after this many new appearances, bounding what a crash
#: leaves for reconciliation to redo.
INDEX_SAVE_EVERY = 20_000


@dataclass(frozen=True)
class IngestOptions:
    """Per-run choices from the command line."""

    camera_id: str
    all_frames: bool = False
    progress: bool = False


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
        tracking: TrackingSettings,
        label_groups: Mapping[str, Sequence[str]],
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
        self.timer = StageTimer(sink=telemetry.count_stage)
        self.reused = 0
        self._executor: ThreadPoolExecutor | None = None
        self.tracks = IngestTracks(catalog=catalog, settings=tracking, label_groups=label_groups)

    def run(self, source: FrameSource, options: IngestOptions) -> IngestStats:
        """Ingest a whole source; refuses one already complete, resumes one cut short."""
        info = source.info
        validate_camera_id(options.camera_id)
        self._catalog.ensure_camera(options.camera_id)
        record = self._catalog.open_source(
            camera_id=options.camera_id,
            uri=info.uri,
            fingerprint=info.fingerprint,
            start=info.start,
            fps=info.fps,
        )
        self._refuse_complete(record, info.uri)
        with claimed(self._blobs, record, info.uri):
            # Re-read under the claim: a run that held it may have finished meanwhile.
            record = self._catalog.get_source(source_id=record.id) or record
            self._refuse_complete(record, info.uri)
            remove_leftovers(self._blobs, self._catalog, record)
            return self._run(source, options, record)

    @staticmethod
    def _refuse_complete(record: SourceRecord, uri: str) -> None:
        if record.complete:
            raise AlreadyIngestedError(
                f"{uri} was already ingested for camera '{record.camera_id}' "
                f"(source #{record.id}); re-ingesting the same content is refused"
            )

    def _run(
        self, source: FrameSource, options: IngestOptions, record: SourceRecord
    ) -> IngestStats:
        """Read the source from its resume point to the end, batch by batch."""
        info = source.info
        resume_after = record.last_frame_index
        if resume_after is not None:
            log.warning("ingest.resume", source_id=record.id, after_frame=resume_after)
        self.timer = StageTimer(sink=telemetry.count_stage)
        self.reused = 0
        self.tracks.reset()
        selector = KeyframeSelector(self._keyframe_settings, all_frames=options.all_frames)
        frames_read = keyframes = appearances = unsaved = 0
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
                    added = self.process(batch, [record.id] * len(batch))
                    appearances += added
                    unsaved += added
                    keyframes += len(batch)
                    batch = []
                    bar.set_postfix(keyframes=keyframes, appearances=appearances)
                if unsaved >= INDEX_SAVE_EVERY:
                    self._save_index()
                    unsaved = 0
            if batch:
                appearances += self.process(batch, [record.id] * len(batch))
                keyframes += len(batch)
        finally:
            bar.close()
            self.close()
        if frames_read == 0:
            raise InputError(
                f"{info.uri}: no frame could be decoded "
                f"({source.corrupt_frames} corrupt); is it a video or an image sequence?"
            )
        self._save_index()
        # The source's last tracks stay open: the camera's next file, if it starts within
        # tracking.max_age of this one's end, continues them (NVR exports come in chunks).
        self._catalog.finish_source(source_id=record.id, frames_read=frames_read)
        return IngestStats(
            source_id=record.id,
            frames_read=frames_read,
            keyframes=keyframes,
            appearances=appearances,
            corrupt_frames=source.corrupt_frames,
            resumed_from=resume_after,
            reused_embeddings=self.reused,
            seconds=dict(self.timer.seconds),
        )

    def _timed_frames(self, source: FrameSource) -> Iterator[Frame]:
        frames = source.frames()
        while True:
            with self.timer.stage("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            telemetry.FRAMES.inc()
            yield frame

    def _save_index(self) -> None:
        with self.timer.stage("index_save"):
            self._index.save()

    def warm_up(self) -> None:
        """Load every model now (they load lazily), so live cameras do not start by dropping."""
        with self.timer.stage("warm_up"):
            self._detector.detect([np.zeros((64, 64, 3), dtype=np.uint8)])
            for embedder in self._embedders.values():
                embedder.embed([np.zeros((64, 32, 3), dtype=np.uint8)])

    def close(self) -> None:
        """Stop the file-writer thread; the pipeline starts a new one if used again."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def process(self, batch: Sequence[Keyframe], source_ids: Sequence[int]) -> int:
        """Prepare and commit one batch, all or nothing; returns the appearances added."""
        prepared = self.prepare(batch, source_ids)
        try:
            self.commit(prepared)
        except BaseException:
            self.discard(prepared)
            raise
        return prepared.appearances

    def prepare(self, batch: Sequence[Keyframe], source_ids: Sequence[int]) -> PreparedBatch:
        """Detect, crop, embed and write files for keyframes of any cameras and sources.

        JPEG encoding and writing (fsync-bound) run on a writer thread while the
        embedder runs; the result waits for both, so no row points at a missing file.
        """
        with self.timer.stage("detect"), telemetry.model_call("detector", len(batch)):
            detections = self._detector.detect(
                [k.frame.image for k in batch], streams=[k.frame.camera_id for k in batch]
            )
        with self.timer.stage("crop"):
            crops = [
                cut_crops(
                    k.frame.image, d, padding=self._crops.padding, min_size=self._crops.min_size
                )
                for k, d in zip(batch, detections, strict=True)
            ]
        keys = BatchKeys.of(batch, crops, source_ids, self._keep_keyframes)
        writing = self._writer().submit(self._write_files, batch, crops, keys)
        try:
            with self.timer.stage("track"):
                plan = self.tracks.plan(batch, crops, keys.crops)
            embedded = self._embed(crops, plan)
            with self.timer.stage("track"):
                assigned = self.tracks.assign(
                    batch, crops, plan, embedded, keys.crops, self._embed_now
                )
            self.reused += plan.reused - assigned.late
            with self.timer.stage("files_wait"):
                seconds, sizes = writing.result()
                self.timer.seconds["files_background"] += seconds
        except BaseException:
            futures.wait([writing])
            self._delete(keys.all())
            raise
        rows = self._rows(batch, crops, keys, source_ids, assigned, sizes)
        return PreparedBatch(rows, keys.all(), assigned.updates)

    def commit(self, prepared: PreparedBatch) -> list[list[int]]:
        """Commit a prepared batch in ONE transaction, then add it to the vector index.

        A failed commit leaves the files in place, so the caller may retry it (live
        ingest during a catalog outage) or `discard` it (recorded ingest).
        """
        with self.timer.stage("catalog"):
            committed = self._catalog.add_tracked(prepared.rows, prepared.tracks)
        with self.timer.stage("index_add"):
            index_tracks(self._index, committed.tracks)
        telemetry.KEYFRAMES.inc(len(committed.appearance_ids))
        telemetry.APPEARANCES.inc(sum(len(ids) for ids in committed.appearance_ids))
        return committed.appearance_ids

    def discard(self, prepared: PreparedBatch) -> None:
        """Remove an uncommitted batch's files (its keys are deterministic, so all named)."""
        self._delete(prepared.keys)

    def save_index(self) -> None:
        """Persist the vector index (atomic per shard)."""
        self._save_index()

    def _delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._blobs.delete(key)

    def _writer(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-files")
        return self._executor

    def _write_files(
        self, batch: Sequence[Keyframe], crops: Sequence[Sequence[Crop]], keys: BatchKeys
    ) -> tuple[float, dict[str, int]]:
        """Encode and store the batch's keyframe and crop JPEGs; seconds taken, bytes per key."""
        started = time.perf_counter()
        quality, side = self._jpeg_quality, self._crops.thumbnail_max_side
        files: list[tuple[str, bytes]] = []
        for kf, frame_crops, kf_key, crop_keys in zip(
            batch, crops, keys.keyframes, keys.crops, strict=True
        ):
            if kf_key is not None:
                files.append((kf_key, encode_jpeg(kf.frame.image, quality)))
            files.extend(
                (key, encode_jpeg(thumbnail(crop.image, side), quality))
                for key, crop in zip(crop_keys, frame_crops, strict=True)
            )
        self._blobs.put_many(files)
        return time.perf_counter() - started, {key: len(data) for key, data in files}

    def _embed(self, crops: Sequence[Sequence[Crop]], plan: Plan) -> list[list[Embedding | None]]:
        """Embed the crops the tracker is not sure of; None for those it continues.

        A continued crop carries its track's latest vector (`IngestTracks.assign`).
        """
        slots = [
            (k, n)
            for k, continues in enumerate(plan.continues)
            for n, track in enumerate(continues)
            if track is None
        ]
        vectors = self._embed_now([crops[k][n] for k, n in slots])
        out: list[list[Embedding | None]] = [[None] * len(c) for c in crops]
        for (k, n), vec in zip(slots, vectors, strict=True):
            out[k][n] = vec
        return out

    def _embed_now(self, crops: Sequence[Crop]) -> list[Embedding]:
        """Embed crops in their order, one model call per space."""
        by_space: dict[Space, list[int]] = defaultdict(list)
        for n, crop in enumerate(crops):
            by_space[space_for(crop.label, self._person_labels)].append(n)
        out: dict[int, Embedding] = {}
        for space, slots in by_space.items():
            embedder = self._embedders[space]
            with self.timer.stage(f"embed_{space}"), telemetry.model_call(space, len(slots)):
                matrix = embedder.embed([crops[n].image for n in slots])
            for n, vec in zip(slots, matrix, strict=True):
                out[n] = (space, vec, embedder.model_id)
        return [out[n] for n in range(len(crops))]

    @staticmethod
    def _rows(
        batch: Sequence[Keyframe],
        crops: Sequence[Sequence[Crop]],
        keys: BatchKeys,
        source_ids: Sequence[int],
        assigned: Assigned,
        sizes: dict[str, int],
    ) -> list[NewKeyframe]:
        """Describe the keyframe and appearance rows to insert for one batch."""
        out = []
        for kf, frame_crops, frame_vecs, kf_key, crop_keys, source_id, tracks, quality in zip(
            batch,
            crops,
            assigned.vectors,
            keys.keyframes,
            keys.crops,
            source_ids,
            assigned.keys,
            assigned.qualities,
            strict=True,
        ):
            apps = tuple(
                NewAppearance(
                    bbox=crop.bbox,
                    label=crop.label,
                    confidence=crop.confidence,
                    space=space,
                    embedding=vec,
                    model_id=model_id,
                    crop_path=key,
                    quality=q,
                    track_key=track,
                    crop_bytes=sizes.get(key),
                )
                for crop, (space, vec, model_id), key, track, q in zip(
                    frame_crops, frame_vecs, crop_keys, tracks, quality, strict=True
                )
            )
            h, w = kf.frame.image.shape[:2]
            out.append(
                NewKeyframe(
                    camera_id=kf.frame.camera_id,
                    source_id=source_id,
                    frame_index=kf.frame.index,
                    ts=kf.frame.ts,
                    width=w,
                    height=h,
                    image_path=kf_key,
                    appearances=apps,
                    image_bytes=sizes.get(kf_key) if kf_key else None,
                )
            )
        return out
