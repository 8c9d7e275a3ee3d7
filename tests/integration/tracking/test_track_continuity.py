"""A camera's tracks go on across a live reconnect, a process restart and the next file.

Live ingest runs keyframes of every camera through one pipeline (`prepare` + `commit`,
as the batcher and writer do), each connection its own source row. A person walking
through the Intel lobby is cut by a 3 s reconnect gap (shorter than tracking.max_age):
the keyframes after it must join the track she had before it. Then a new pipeline (what a
restarted `surveil run` builds) must restore her open track from the catalog and continue
it too, while a stranger in the same camera an hour later starts a track of his own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from catalog_sql import catalog_rows

from surveil.container import Services
from surveil.domain import Frame, Keyframe
from surveil.ingest.pipeline import IngestOptions, IngestPipeline
from surveil.ingest.sources import open_source

pytestmark = pytest.mark.slow

LOBBY = "videos/intel_sample_videos/one-by-one-person-detection.mp4"
CAMERA = "lobby-live"
T0 = datetime(2026, 6, 1, 9, tzinfo=UTC)
FPS = 10.0


def _frames(shared_data: Path, wanted: set[int]) -> dict[int, Frame]:
    source = open_source(str(shared_data / LOBBY), camera_id=CAMERA, start=T0, fps=FPS)
    try:
        return {f.index: f for f in source.frames() if f.index in wanted}
    finally:
        source.close()


def _session(
    services: Services, pipeline: IngestPipeline, frames: list[Frame], start: datetime
) -> None:
    """One connection: a source row, then its keyframes in batches of 4, prepared and
    committed as live ingest does."""
    record = services.catalog.open_source(
        camera_id=CAMERA,
        uri="rtsp://camera/lobby",
        fingerprint=f"live:{CAMERA}:{start.isoformat()}",
        start=start,
        fps=FPS,
    )
    for at in range(0, len(frames), 4):
        batch = [Keyframe(frame=f, reason="motion") for f in frames[at : at + 4]]
        pipeline.commit(pipeline.prepare(batch, [record.id] * len(batch)))


def _tracks_by_frame(services: Services) -> dict[int, int]:
    rows = catalog_rows(
        services.settings.database_url,
        "SELECT frame_index, track_id FROM appearances WHERE camera_id = :c AND label = 'person'",
        {"c": CAMERA},
    )
    return {int(f): int(t) for f, t in rows}


def test_a_walkers_track_continues_across_a_reconnect_and_a_restart(
    offline_services: Services, shared_data: Path
) -> None:
    services = offline_services
    # The woman in the black jumper crosses the lobby in frames ~502-697 (10 fps).
    before, after, restarted = range(520, 560, 5), range(590, 630, 5), range(650, 690, 5)
    frames = _frames(shared_data, {*before, *after, *restarted, 800})
    pipeline = services.ingest_pipeline()
    _session(services, pipeline, [frames[i] for i in before], T0)
    # Frames 560-589 never arrive: the stream dropped for 3 s and was reconnected.
    _session(services, pipeline, [frames[i] for i in after], frames[after[0]].ts)
    pipeline.close()
    fresh = services.ingest_pipeline()  # a restarted `surveil run`: state from the catalog
    _session(services, fresh, [frames[i] for i in restarted], frames[restarted[0]].ts)
    # A stranger (frame 800: the next person) an hour later is nobody's continuation.
    later = Frame(CAMERA, 800, frames[restarted[-1]].ts + timedelta(hours=1), frames[800].image)
    _session(services, fresh, [later], later.ts)
    fresh.close()

    tracks = _tracks_by_frame(services)
    walker = {tracks[i] for i in (*before, *after, *restarted) if i in tracks}
    seen = [i for i in (*before, *after, *restarted) if i in tracks]
    assert len(seen) >= 18, seen  # she was detected in nearly every keyframe
    assert len(walker) == 1, {i: tracks[i] for i in seen}
    assert tracks[800] not in walker


def _chunk(frames: list[Frame], folder: Path) -> str:
    """Frames written as an image folder: one recorded source (a chunk of an NVR export)."""
    folder.mkdir()
    for n, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{n:06d}.jpg"), frame.image)
    return str(folder)


def test_a_track_continues_into_the_cameras_next_file_but_never_backwards(
    offline_services: Services, shared_data: Path, tmp_path: Path
) -> None:
    services = offline_services
    first, second, earlier = range(520, 560, 5), range(560, 600, 5), range(620, 640, 5)
    frames = _frames(shared_data, {*first, *second, *earlier})
    half = timedelta(seconds=0.5)  # every 5th frame at 10 fps
    for name, chosen, start in (
        ("first", first, T0),
        ("second", second, T0 + 8 * half),
        # Footage from before the first file, ingested last: it continues nothing.
        ("earlier", earlier, T0 - 10 * half),
    ):
        source = _chunk([frames[i] for i in chosen], tmp_path / name)
        options = IngestOptions(CAMERA, all_frames=True)
        services.ingest(source, options, start=start, fps=2.0)
    rows = catalog_rows(
        services.settings.database_url,
        "SELECT s.uri, a.track_id FROM appearances a "
        "JOIN keyframes k ON k.id = a.keyframe_id JOIN sources s ON s.id = k.source_id "
        "WHERE a.camera_id = :c AND a.label = 'person'",
        {"c": CAMERA},
    )
    by_file: dict[str, set[int]] = {}
    for uri, track in rows:
        by_file.setdefault(Path(uri).name, set()).add(int(track))
    assert len(by_file["first"]) == 1 and by_file["second"] == by_file["first"], by_file
    assert not by_file["earlier"] & by_file["first"], by_file
