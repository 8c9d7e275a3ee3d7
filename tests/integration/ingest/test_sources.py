"""Recorded sources over real video and MOT frames: timing, bad input, corruption, threads."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from surveil.domain import InputError
from surveil.ingest.sources import open_source

START = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
CAR = "videos/intel_sample_videos/car-detection.mp4"
PEOPLE = "videos/intel_sample_videos/one-by-one-person-detection.mp4"
MOT09 = "mot/MOT17-mini/train/MOT17-09-FRCNN"


def decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("decode-")]


@pytest.fixture
def mot_copy(shared_data: Path, tmp_path: Path) -> Path:
    """The four MOT17-09 frames copied into tmp (no seqinfo.ini beside them)."""
    target = tmp_path / "frames"
    target.mkdir()
    for image in sorted((shared_data / MOT09 / "img1").glob("*.jpg")):
        shutil.copy2(image, target / image.name)
    return target


@pytest.mark.parametrize("decode_ahead", [0, 3])
def test_video_file_frames_fps_and_timestamps(shared_data: Path, decode_ahead: int) -> None:
    source = open_source(
        str(shared_data / CAR), camera_id="lot", start=START, decode_ahead=decode_ahead
    )
    try:
        assert source.info.fps == pytest.approx(12.5)
        assert source.info.frame_count == 377
        assert source.info.start == START
        frames = list(source.frames())
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(377))
    assert frames[0].image.shape == (432, 768, 3)
    assert all(f.camera_id == "lot" for f in frames)
    stamps = [f.ts for f in frames]
    assert all(a < b for a, b in pairwise(stamps))
    for f in frames:
        expected = START + timedelta(seconds=f.index / 12.5)
        assert abs((f.ts - expected).total_seconds()) < 0.02
    assert source.corrupt_frames == 0


def test_video_start_defaults_to_file_mtime(shared_data: Path) -> None:
    path = shared_data / CAR
    source = open_source(str(path), camera_id="lot")
    try:
        assert source.info.start == datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        first = next(iter(source.frames()))
        assert first.ts == source.info.start
    finally:
        source.close()


def test_image_pattern_reads_mot_sequence(shared_data: Path) -> None:
    source = open_source(
        str(shared_data / MOT09 / "img1" / "%06d.jpg"), camera_id="m9", start=START
    )
    try:
        assert source.info.fps == 30.0  # from seqinfo.ini one level up
        assert source.info.frame_count == 4
        frames = list(source.frames())
    finally:
        source.close()
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[0].image.shape == (1080, 1920, 3)
    assert [f.ts for f in frames] == [START + timedelta(seconds=i / 30) for i in range(4)]


def test_image_directory_reads_mot_sequence(shared_data: Path) -> None:
    img1 = shared_data / MOT09 / "img1"
    source = open_source(str(img1), camera_id="m9")
    try:
        assert source.info.fps == 30.0
        assert source.info.start == datetime.fromtimestamp(
            (img1 / "000001.jpg").stat().st_mtime, tz=UTC
        )
        frames = list(source.frames())
    finally:
        source.close()
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[1].ts - frames[0].ts == timedelta(seconds=1 / 30)


def test_pattern_numbering_starts_at_first_existing_number(mot_copy: Path) -> None:
    (mot_copy / "000001.jpg").unlink()
    source = open_source(str(mot_copy / "%06d.jpg"), camera_id="m9", start=START, fps=10.0)
    try:
        assert [f.index for f in source.frames()] == [0, 1, 2]
    finally:
        source.close()


def test_sequence_without_seqinfo_uses_fps_argument_else_one(mot_copy: Path) -> None:
    with capture_logs() as logs:
        source = open_source(str(mot_copy), camera_id="m9")
    source.close()
    assert source.info.fps == 1.0
    assert any("--fps" in entry["event"] for entry in logs)
    source = open_source(str(mot_copy), camera_id="m9", fps=7.5)
    source.close()
    assert source.info.fps == 7.5


def test_missing_path_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "nope.mp4"), camera_id="c")


def test_text_file_named_mp4_is_input_error(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(InputError, match="not a video"):
        open_source(str(fake), camera_id="c")


def test_empty_directory_is_input_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="no images"):
        open_source(str(tmp_path), camera_id="c")


def test_pattern_matching_nothing_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no files match"):
        open_source(str(tmp_path / "img1" / "%06d.jpg"), camera_id="c")


def test_naive_start_is_input_error(shared_data: Path) -> None:
    with pytest.raises(InputError, match="timezone"):
        open_source(str(shared_data / CAR), camera_id="c", start=datetime(2024, 5, 1))


@pytest.mark.parametrize("decode_ahead", [0, 2])
def test_corrupt_jpeg_in_the_middle_is_skipped_and_counted(
    mot_copy: Path, decode_ahead: int
) -> None:
    (mot_copy / "000002.jpg").write_bytes(b"\xff\xd8garbage, not a jpeg" * 50)
    source = open_source(str(mot_copy), camera_id="m9", fps=30.0, decode_ahead=decode_ahead)
    with capture_logs() as logs:
        try:
            frames = list(source.frames())
        finally:
            source.close()
    assert [f.index for f in frames] == [0, 2, 3]
    assert source.corrupt_frames == 1
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["index"] for e in warnings] == [1]


def test_fingerprint_stable_across_opens_and_content_specific(
    shared_data: Path, mot_copy: Path
) -> None:
    def fingerprint(path: Path) -> str:
        source = open_source(str(path), camera_id="c", fps=30.0)
        source.close()
        return source.info.fingerprint

    car = fingerprint(shared_data / CAR)
    assert car == fingerprint(shared_data / CAR)
    assert car != fingerprint(shared_data / PEOPLE)
    frames = fingerprint(mot_copy)
    assert frames == fingerprint(shared_data / MOT09 / "img1")  # a copy is the same content
    (mot_copy / "000004.jpg").write_bytes((mot_copy / "000003.jpg").read_bytes())
    assert fingerprint(mot_copy) != frames


def test_early_close_leaves_no_decode_thread(shared_data: Path) -> None:
    source = open_source(str(shared_data / PEOPLE), camera_id="c", decode_ahead=2)
    frames = source.frames()
    assert [next(frames).index for _ in range(3)] == [0, 1, 2]
    assert decode_threads()
    source.close()  # without closing the generator first
    assert decode_threads() == []


def test_stopping_the_generator_stops_the_decode_thread(shared_data: Path) -> None:
    source = open_source(str(shared_data / PEOPLE), camera_id="c", decode_ahead=4)
    try:
        for f in source.frames():
            if f.index == 5:
                break
        # The for loop dropped the generator; CPython closes it at once.
        assert decode_threads() == []
    finally:
        source.close()


def test_frames_is_single_use(shared_data: Path) -> None:
    source = open_source(str(shared_data / CAR), camera_id="c")
    try:
        source.frames()
        with pytest.raises(RuntimeError, match="already started"):
            source.frames()
    finally:
        source.close()
