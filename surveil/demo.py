"""`surveil demo`: real sample video into the embedded default, then a search.

With `--data DIR` (a directory laid out like ../shared/data) everything is local and
offline. Without it, the CC-BY Intel sample video and Ultralytics' default YOLO weights
are downloaded (needs a network).
"""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from surveil.config import Settings
from surveil.container import Services, build_services
from surveil.domain import AlreadyIngestedError, Image, InputError, SearchFilters, SurveilError
from surveil.ingest.pipeline import IngestOptions
from surveil.search.render import sightings_table
from surveil.vision.crops import decode_image, read_image

log = structlog.get_logger(__name__)

INTEL_VIDEO_URL = (
    "https://github.com/intel-iot-devkit/sample-videos/raw/master/one-by-one-person-detection.mp4"
)
LOBBY_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MARKET_START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
MARKET_FPS = 25.0
#: Cosine similarity under which OSNet matches are mostly other people.
DEMO_MIN_SCORE = 0.7
LOBBY = Path("videos/intel_sample_videos/one-by-one-person-detection.mp4")
MARKET = Path("reid/market1501_person_search_demo")


@dataclass(frozen=True)
class DemoSource:
    """One recorded source the demo ingests as one camera."""

    camera_id: str
    path: Path
    start: datetime
    all_frames: bool = False
    fps: float | None = None


@dataclass(frozen=True)
class DemoPlan:
    """What the demo ingests and what it searches for."""

    data: Path | None
    overrides: dict[str, Any] = field(default_factory=dict)


def plan_demo(data: Path | None) -> DemoPlan:
    """Settings overrides for local sample data (offline models) or for downloads."""
    if data is None:
        # No re-ID model can be downloaded, so persons use the general ImageNet CNN.
        return DemoPlan(
            data=None,
            overrides={
                "embedders.person.backend": "torchvision",
                "embedders.person.weights": None,
                "embedders.person.input_height": 256,
                "embedders.person.input_width": 128,
            },
        )
    data = data.resolve()
    if not (data / "models").is_dir() or not (data / "videos").is_dir():
        raise InputError(
            f"{data} is not a sample data directory (expected models/ and videos/ inside; "
            "see ../shared/data/MANIFEST.md)"
        )
    return DemoPlan(
        data=data,
        overrides={
            "model_dir": str(data / "models"),
            "detector.weights": str(data / "models" / "yolov8n_int8_dynamic.onnx"),
        },
    )


def _download(url: str, dest: Path) -> Path:
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    log.info("demo.download", url=url, to=str(dest))
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, part.open("wb") as out:
            shutil.copyfileobj(resp, out)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise InputError(
            f"cannot download the sample video ({exc}); without a network run "
            "`surveil demo --data DIR` with a local sample data directory"
        ) from exc
    part.replace(dest)
    return dest


def _market_sources(data: Path, work: Path) -> list[DemoSource]:
    """Each Market-1501 frame as its own one-frame source, timed by its frame number."""
    out = []
    for frame in sorted((data / MARKET / "frames").glob("c*s1_*.jpg")):
        camera, number = frame.stem.split("s1_")
        holder = work / "market" / frame.stem
        holder.mkdir(parents=True, exist_ok=True)
        link = holder / frame.name
        if not link.exists():
            try:
                link.symlink_to(frame)
            except OSError:
                shutil.copyfile(frame, link)
        start = MARKET_START + timedelta(seconds=int(number) / MARKET_FPS)
        out.append(DemoSource(f"market-{camera}", holder, start, True, MARKET_FPS))
    return out


def demo_sources(plan: DemoPlan, settings: Settings) -> list[DemoSource]:
    """The sources to ingest: local sample data, or the downloaded Intel video."""
    work = settings.storage.root / "demo-inputs"
    if plan.data is None:
        video = _download(INTEL_VIDEO_URL, work / "one-by-one-person-detection.mp4")
        return [DemoSource("lobby", video, LOBBY_START)]
    return [DemoSource("lobby", plan.data / LOBBY, LOBBY_START), *_market_sources(plan.data, work)]


def _ingest_all(services: Services, sources: list[DemoSource]) -> list[str]:
    lines = []
    for src in sources:
        options = IngestOptions(
            camera_id=src.camera_id, all_frames=src.all_frames, progress=sys.stderr.isatty()
        )
        try:
            stats = services.ingest(str(src.path), options, start=src.start, fps=src.fps)
            lines.append(f"  {src.camera_id:<12} {stats.summary()}")
        except AlreadyIngestedError:
            lines.append(f"  {src.camera_id:<12} {src.path.name}: already ingested, kept")
    return lines


def _query(plan: DemoPlan, services: Services) -> tuple[str, Image]:
    """The example crop: a witness photo from a camera never ingested, or a stored crop."""
    if plan.data is not None:
        path = plan.data / MARKET / "query" / "0001_c6s1_009601_00.jpg"
        return f"{path.name} (person 0001 seen by camera 6, which was not ingested)", read_image(
            path
        )
    best = services.catalog.best_appearance(label="person")
    if best is None:
        raise SurveilError("the demo video gave no person detections to search for")
    return f"stored crop {best.crop_path}", decode_image(
        services.blobs.get(best.crop_path), what=best.crop_path
    )


def run_demo(settings: Settings, plan: DemoPlan) -> str:
    """Ingest the sample sources (skipping ones already in), search, and report."""
    services = build_services(settings)
    try:
        out = [f"data directory: {settings.storage.root.resolve()}", "ingest:"]
        out += _ingest_all(services, demo_sources(plan, settings))
        what, image = _query(plan, services)
        filters = SearchFilters(min_score=DEMO_MIN_SCORE)
        result = services.search().by_image(image, label="person", filters=filters, limit=20)
        out += [
            "",
            f"search by example: {what}, similarity >= {DEMO_MIN_SCORE}",
            f"{len(result.sightings)} sightings in {result.seconds * 1000:.0f} ms, "
            "ordered by time:",
            sightings_table(result.sightings),
            "",
            "next: surveil search CROP.jpg [--camera ID] [--since T] [--json]",
        ]
        return "\n".join(out)
    finally:
        services.close()
