"""A live camera's tracks go on across a reconnect and across a restart of the process.

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

import pytest
from sqlalchemy import create_engine, text

from surveil.container import Services
from surveil.domain import Frame, Keyframe
from surveil.ingest.pipeline import IngestPipeline
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
    engine = create_engine(services.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT frame_index, track_id FROM appearances "
                    "WHERE camera_id = :c AND label = 'person'"
                ),
                {"c": CAMERA},
            ).all()
    finally:
        engine.dispose()
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
