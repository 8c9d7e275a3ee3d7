"""`surveil demo`: real sample video into the embedded default, then a search.

With `--data DIR` (a directory laid out like ../shared/data) everything is local and
offline. Without it, the CC-BY Intel sample video and Ultralytics' default YOLO weights
are downloaded (needs a network).
"""

from __future__ import annotations

import json
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
MARKET_FPS = 25.0
#: Cosine similarity under which OSNet matches are mostly other people.
DEMO_MIN_SCORE = 0.7
#: Where the demo's settings are written, so later commands in this folder find them.
DEMO_CONFIG = Path("surveil.yaml")
LOBBY = Path("videos/intel_sample_videos/one-by-one-person-detection.mp4")
MARKET = Path("reid/market1501_person_search_demo")
QUERY = MARKET / "query" / "0001_c6s1_009601_00.jpg"


def demo_day(now: datetime | None = None) -> datetime:
    """Yesterday 00:00 UTC: the demo's footage is recent, so retention keeps it 30 days."""
    today = (now or datetime.now(UTC)).astimezone(UTC)
    return datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=1)


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
                "detector.download": True,
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


def _market_sources(data: Path, work: Path, day: datetime) -> list[DemoSource]:
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
        start = day + timedelta(hours=10, seconds=int(number) / MARKET_FPS)
        out.append(DemoSource(f"market-{camera}", holder, start, True, MARKET_FPS))
    return out


def demo_sources(plan: DemoPlan, settings: Settings) -> list[DemoSource]:
    """The sources to ingest: local sample data, or the downloaded Intel video.

    Dated yesterday (lobby 09:00 UTC, Market-1501 10:00 UTC), not on fixed dates: fixed
    dates age past retention.days and the first scheduled retention run deleted them.
    """
    work = settings.storage.root / "demo-inputs"
    day = demo_day()
    lobby = day + timedelta(hours=9)
    if plan.data is None:
        video = _download(INTEL_VIDEO_URL, work / "one-by-one-person-detection.mp4")
        return [DemoSource("lobby", video, lobby)]
    return [DemoSource("lobby", plan.data / LOBBY, lobby), *_market_sources(plan.data, work, day)]


def _yaml_lines(overrides: dict[str, Any]) -> list[str]:
    """Dotted overrides as nested YAML (values quoted as JSON, which YAML reads)."""
    lines: list[str] = []
    done: list[str] = []
    for dotted, value in sorted(overrides.items()):
        *parents, leaf = dotted.split(".")
        for depth, part in enumerate(parents):
            if done[: depth + 1] != parents[: depth + 1]:
                lines.append("  " * depth + f"{part}:")
        done = parents
        lines.append("  " * len(parents) + f"{leaf}: {json.dumps(value)}")
    return lines


def write_demo_config(plan: DemoPlan, path: Path = DEMO_CONFIG) -> str:
    """Keep the demo's settings in ./surveil.yaml (never over a different file); say what."""
    text = (
        "\n".join(
            [
                "# Written by `surveil demo`: the settings it used, so that later surveil",
                "# commands run from this folder find the same models and data. surveil reads",
                "# ./surveil.yaml when neither --config nor $SURVEIL_CONFIG is given;",
                "# SURVEIL_* environment variables override it (defaults < file < environment).",
                "# Every setting: configs/default.yaml. What is in effect: `surveil config show`.",
                *_yaml_lines(plan.overrides),
            ]
        )
        + "\n"
    )
    if path.is_file():
        if path.read_text(encoding="utf-8") == text:
            return f"settings: {path} already holds the demo's settings"
        return (
            f"settings: kept your {path} (not overwritten); add these for later commands: "
            + ", ".join(f"{k}={v}" for k, v in sorted(plan.overrides.items()))
        )
    path.write_text(text, encoding="utf-8")
    return f"settings: wrote {path} (model locations); later commands here pick it up"


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


def _command() -> str:
    """How the user types `surveil` here: bare when it is on PATH, else the venv's script.

    Right after the README's set-up command the venv is not activated, so a bare
    `surveil` in the hint would be "command not found".
    """
    script = Path(sys.executable).with_name("surveil")
    on_path = shutil.which("surveil")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "surveil"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _example_path(plan: DemoPlan) -> str:
    """A crop the next command can search for verbatim."""
    return str(plan.data / QUERY) if plan.data is not None else "CROP.jpg"


def _query(plan: DemoPlan, services: Services) -> tuple[str, Image]:
    """The example crop: a witness photo from a camera never ingested, or a stored crop."""
    if plan.data is not None:
        path = plan.data / QUERY
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
        out = [
            f"data directory: {settings.storage.root.resolve()}",
            write_demo_config(plan),
            "ingest:",
        ]
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
            *(f"warning: {w}" for w in result.warnings),
            f"next: {_command()} search {_example_path(plan)} "
            "--label person [--camera ID] [--json]",
        ]
        return "\n".join(out)
    finally:
        services.close()
