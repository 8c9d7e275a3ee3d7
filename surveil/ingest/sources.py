"""Recorded media readers (video files, image sequences, image directories).

Every reader implements `ports.FrameSource`. Bad input fails at open time with an
`InputError`; a corrupt frame in the middle is skipped, counted and logged. Decoding is
the first hot path, so frames are handed on exactly as OpenCV returns them (no copies),
and `decode_ahead` can overlap decoding with whatever consumes the frames.
"""

from __future__ import annotations

import configparser
import hashlib
import math
import queue
import re
import threading
from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, cast

import cv2
import structlog

from surveil.domain import Frame, Image, InputError
from surveil.ports import FrameSource, SourceInfo

log = structlog.get_logger(__name__)

IMAGE_EXTENSIONS: Final = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
#: Consecutive failed video reads tolerated before the stream is taken to have ended.
MAX_CONSECUTIVE_FAILURES: Final = 25
_FALLBACK_FPS: Final = 1.0
_FINGERPRINT_CHUNK: Final = 1 << 20
_PRINTF_INT = re.compile(r"%(0?)(\d*)d")
_POLL_SECONDS: Final = 0.1


def open_source(
    path: str,
    *,
    camera_id: str,
    start: datetime | None = None,
    fps: float | None = None,
    decode_ahead: int = 0,
) -> FrameSource:
    """Open a video file, a printf image pattern or an image directory, failing fast."""
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise InputError(f"--fps must be a positive number, got {fps}")
    if decode_ahead < 0:
        raise InputError(f"decode-ahead queue size must be >= 0, got {decode_ahead}")
    start = _utc(start) if start is not None else None
    p = Path(path)
    if p.is_file():
        return VideoFileSource(
            p, camera_id=camera_id, start=start, fps=fps, decode_ahead=decode_ahead
        )
    if not p.is_dir() and "%" not in p.name:
        raise InputError(f"no such file or directory: {path}")
    images = _directory_images(p) if p.is_dir() else _pattern_images(p)
    return ImageSequenceSource(
        path, images, camera_id=camera_id, start=start, fps=fps, decode_ahead=decode_ahead
    )


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InputError(f"start time {ts.isoformat()} needs a timezone (e.g. ...Z or +00:00)")
    return ts.astimezone(UTC)


def _mtime_utc(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


class _RecordedSource:
    """What every recorded reader shares: info, corrupt count, decode-ahead, close."""

    def __init__(self, info: SourceInfo, *, camera_id: str, decode_ahead: int) -> None:
        self._info = info
        self._camera_id = camera_id
        self._decode_ahead = decode_ahead
        self._corrupt = 0
        self._started = False
        self._closed = False
        self._pump: _Pump | None = None

    @property
    def info(self) -> SourceInfo:
        return self._info

    @property
    def corrupt_frames(self) -> int:
        return self._corrupt

    def frames(self) -> Iterator[Frame]:
        """Frames in order; single use, because a recorded source is read once per open."""
        if self._closed:
            raise RuntimeError(f"source {self._info.uri} is closed")
        if self._started:
            raise RuntimeError(f"frames() of {self._info.uri} already started; open it again")
        self._started = True
        if self._decode_ahead > 0:
            return self._frames_ahead()
        return self._decode()

    def _frames_ahead(self) -> Iterator[Frame]:
        pump = _Pump(self._decode(), self._decode_ahead, name=f"decode-{self._camera_id}")
        self._pump = pump
        pump.start()
        try:
            yield from pump
        finally:
            # Runs when the consumer stops early (generator closed) as well as at the end.
            pump.stop()
            self._pump = None

    def close(self) -> None:
        """Stop any decode-ahead thread, then release the decoder; safe to call twice."""
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> _RecordedSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _skip(self, index: int, why: str) -> None:
        self._corrupt += 1
        log.warning(
            "corrupt frame skipped",
            camera_id=self._camera_id,
            uri=self._info.uri,
            index=index,
            reason=why,
        )

    def _decode(self) -> Generator[Frame, None, None]:
        raise NotImplementedError

    def _release(self) -> None:
        """Free decoder resources; image sequences hold none."""


class VideoFileSource(_RecordedSource):
    """A recorded video file decoded by OpenCV's FFmpeg backend."""

    def __init__(
        self,
        path: Path,
        *,
        camera_id: str,
        start: datetime | None,
        fps: float | None,
        decode_ahead: int = 0,
    ) -> None:
        fingerprint = _video_fingerprint(path)
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"{path} is not a video OpenCV/FFmpeg can read")
        # Read the first frame now so that "opens but decodes nothing" fails at open time.
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise InputError(f"{path} holds no decodable video frames")
        self._cap = cap
        self._first: Image | None = cast(Image, first)
        self._first_msec = float(cap.get(cv2.CAP_PROP_POS_MSEC))
        native = float(cap.get(cv2.CAP_PROP_FPS))
        rate = native if math.isfinite(native) and 0 < native <= 1000 else fps
        if rate is None:
            log.warning("video states no frame rate; assuming 25, pass --fps", uri=str(path))
            rate = 25.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        info = SourceInfo(
            uri=str(path),
            fingerprint=fingerprint,
            fps=rate,
            frame_count=int(count) if math.isfinite(count) and count > 0 else None,
            start=start or _mtime_utc(path),
        )
        super().__init__(info, camera_id=camera_id, decode_ahead=decode_ahead)

    def _decode(self) -> Generator[Frame, None, None]:
        clock = _VideoClock(self._info.fps)
        first, self._first = self._first, None
        if first is not None:
            yield self._frame(0, first, clock.offset(0, self._first_msec))
        index = 1
        failed: list[int] = []  # failed reads: corrupt frames, or the end of the stream
        while len(failed) < MAX_CONSECUTIVE_FAILURES:
            ok, image = self._cap.read()
            if not ok or image is None:
                failed.append(index)
                index += 1
                continue
            for bad in failed:  # a good frame after failures proves they were corrupt
                self._skip(bad, "video frame failed to decode")
            failed.clear()
            offset = clock.offset(index, float(self._cap.get(cv2.CAP_PROP_POS_MSEC)))
            yield self._frame(index, cast(Image, image), offset)
            index += 1

    def _frame(self, index: int, image: Image, offset_s: float) -> Frame:
        ts = self._info.start + timedelta(seconds=offset_s)
        return Frame(camera_id=self._camera_id, index=index, ts=ts, image=image)

    def _release(self) -> None:
        self._cap.release()


class _VideoClock:
    """Frame offsets from the container's clock while it is sane, else from index/fps."""

    def __init__(self, fps: float) -> None:
        self._fps = fps
        self._last = -math.inf

    def offset(self, index: int, pos_msec: float) -> float:
        """Seconds since the start; strictly increasing so the catalog's order is stable."""
        seconds = pos_msec / 1000.0
        # Some containers/backends report 0 or repeat a position: fall back to index/fps.
        if not (math.isfinite(seconds) and seconds >= 0 and seconds > self._last):
            seconds = index / self._fps
        if seconds <= self._last:
            seconds = self._last + 1.0 / self._fps
        self._last = seconds
        return seconds


class ImageSequenceSource(_RecordedSource):
    """Still images read in order: a printf pattern (MOT img1/%06d.jpg) or a directory."""

    def __init__(
        self,
        uri: str,
        images: list[tuple[int, Path]],
        *,
        camera_id: str,
        start: datetime | None,
        fps: float | None,
        decode_ahead: int = 0,
    ) -> None:
        self._images = images
        first = images[0][1]
        try:
            fingerprint = _sequence_fingerprint(images)
            start = start or _mtime_utc(first)
        except OSError as exc:
            raise InputError(f"cannot read images of {uri}: {exc.strerror}") from exc
        info = SourceInfo(
            uri=uri,
            fingerprint=fingerprint,
            fps=fps or _sequence_fps(first.parent, uri),
            frame_count=len(images),
            start=start,
        )
        super().__init__(info, camera_id=camera_id, decode_ahead=decode_ahead)

    def _decode(self) -> Generator[Frame, None, None]:
        start, fps = self._info.start, self._info.fps
        for index, path in self._images:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self._skip(index, f"{path.name} does not decode as an image")
                continue
            ts = start + timedelta(seconds=index / fps)
            yield Frame(camera_id=self._camera_id, index=index, ts=ts, image=cast(Image, image))


def _directory_images(directory: Path) -> list[tuple[int, Path]]:
    try:
        names = sorted(
            p for p in directory.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
    except OSError as exc:
        raise InputError(f"cannot list directory {directory}: {exc.strerror}") from exc
    if not names:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise InputError(f"directory {directory} holds no images ({exts})")
    return list(enumerate(names))


def _pattern_images(pattern: Path) -> list[tuple[int, Path]]:
    """Files matching a printf pattern, indexed from the first existing number."""
    name = pattern.name
    found = list(_PRINTF_INT.finditer(name))
    if len(found) != 1:
        raise InputError(f"image pattern {pattern} needs exactly one %d or %0Nd field")
    m = found[0]
    digits = rf"\d{{{int(m.group(2))},}}" if m.group(1) else r"\d+"
    regex = re.compile(re.escape(name[: m.start()]) + f"({digits})" + re.escape(name[m.end() :]))
    directory = pattern.parent
    numbered: list[tuple[int, Path]] = []
    if directory.is_dir():
        for p in directory.iterdir():
            hit = regex.fullmatch(p.name)
            # Re-formatting the number must give the name back (rejects 0001 for %06d).
            if hit and name % int(hit.group(1)) == p.name and p.is_file():
                numbered.append((int(hit.group(1)), p))
    if not numbered:
        raise InputError(f"no files match the image pattern {pattern}")
    numbered.sort()
    first = numbered[0][0]
    return [(n - first, p) for n, p in numbered]


def _sequence_fps(directory: Path, uri: str) -> float:
    """fps from a MOT-style seqinfo.ini beside the images or one level up, else 1.0."""
    for candidate in (directory / "seqinfo.ini", directory.parent / "seqinfo.ini"):
        if not candidate.is_file():
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read(candidate, encoding="utf-8")
            rate = float(parser.get("Sequence", "frameRate"))
        except (configparser.Error, ValueError, OSError):
            log.warning("seqinfo.ini has no usable frameRate", path=str(candidate))
            continue
        if math.isfinite(rate) and rate > 0:
            return rate
    log.warning(
        "image sequence frame rate unknown; assuming 1 fps, pass --fps", uri=uri, fps=_FALLBACK_FPS
    )
    return _FALLBACK_FPS


def _video_fingerprint(path: Path) -> str:
    """sha256 of size + first and last MiB: cheap on big files, changes with the content."""
    try:
        size = path.stat().st_size
        digest = hashlib.sha256(f"video:{size}:".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(_FINGERPRINT_CHUNK))
            if size > _FINGERPRINT_CHUNK:
                fh.seek(max(_FINGERPRINT_CHUNK, size - _FINGERPRINT_CHUNK))
                digest.update(fh.read(_FINGERPRINT_CHUNK))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def _sequence_fingerprint(images: list[tuple[int, Path]]) -> str:
    """sha256 of every name and size plus the first and last image's bytes.

    Contents rather than mtimes, so a copied sequence is recognised as the same one.
    """
    digest = hashlib.sha256(b"images:")
    for index, p in images:
        digest.update(f"{index}:{p.name}:{p.stat().st_size}\n".encode())
    for _, p in (images[0], images[-1]):
        digest.update(p.read_bytes())
    return digest.hexdigest()


class _Pump:
    """Runs a frame iterator in a thread behind a bounded queue; stops on request."""

    def __init__(self, source: Generator[Frame, None, None], size: int, *, name: str) -> None:
        self._source = source
        # None marks the end; an exception from decoding travels to the consumer.
        self._queue: queue.Queue[Frame | Exception | None] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self._source:
                if not self._put(frame):
                    return
            self._put(None)
        except Exception as exc:
            self._put(exc)
        finally:
            self._source.close()  # the decode generator belongs to this thread

    def _put(self, item: Frame | Exception | None) -> bool:
        # Poll so that a stop request is seen even while the queue is full.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                # A dead thread with an empty queue can send nothing more.
                if self._stop.is_set() or (not self._thread.is_alive() and self._queue.empty()):
                    return
                continue
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def stop(self) -> None:
        """Signal the thread, unblock it, and wait for it: no thread outlives the source."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
