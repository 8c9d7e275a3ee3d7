"""What comparing two crops and exporting evidence cost (issue 13, items 4 and 5).

Compare: `compare_crops` on the Market-1501 identity 0001 pair and on that person against
a MOT17-09 ground-truth person, with the label given and with the detector's crop label,
timed over repeats (models warm). Export: ingests the Intel lobby video into a SQLite
catalog, then writes and verifies the archive of its longest track (sighting) and of a
search from that track's best crop (search), timing each and giving sizes.

    .venv/bin/python benchmarks/bench_evidence.py --data ../shared/data [--repeats 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import _settings, _warm_up

from surveil.config import LoggingSettings
from surveil.container import Services, build_services
from surveil.domain import Image, SearchFilters
from surveil.ingest.pipeline import IngestOptions
from surveil.logs import configure_logging
from surveil.search.audited import Actor, AuditedSearch, Example, SearchOptions
from surveil.search.compare import compare_crops
from surveil.search.evidence.archive import verify_archive
from surveil.storage.migrate import upgrade
from surveil.vision.crops import read_image

MOT09 = Path("mot/MOT17-mini/train/MOT17-09-FRCNN")
MARKET = Path("reid/market1501_person_search_demo/query")
LOBBY = Path("videos/intel_sample_videos/one-by-one-person-detection.mp4")
ACTOR = Actor(key_id=None, name="bench", role="cli")


def _ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and worst wall time of `fn` in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def bench_compare(services: Services, data: Path, repeats: int) -> None:
    a, b = (read_image(p) for p in sorted((data / MARKET).glob("0001_*.jpg")))
    line = (data / MOT09 / "gt" / "gt.txt").read_text().split("\n")[0].split(",")
    frame, _, x, y, w, h = (int(float(v)) for v in line[:6])
    image = read_image(data / MOT09 / "img1" / f"{frame:06d}.jpg")
    other = image[y : y + h, x : x + w]
    search = services.search()
    pairs: list[tuple[str, Image, Image]] = [
        ("Market 0001 c1 vs c6", a, b),
        ("Market 0001 vs MOT17-09", a, other),
    ]
    for name, one, two in pairs:
        for label in ("person", None):
            found = compare_crops(search, one, two, label=label)

            def run(one: Image = one, two: Image = two, label: str | None = label) -> object:
                return compare_crops(search, one, two, label=label)

            med, worst = _ms(run, repeats)
            print(
                f"compare {name:26s} label={label or 'detector':8s} similarity "
                f"{found.similarity:.3f} threshold {found.threshold:.2f} same={found.same!s:5s} "
                f"median {med:.1f} ms, worst {worst:.1f} ms ({repeats} runs)"
            )


def _export(services: Services, kind: str, subject: int, out: Path) -> None:
    start = time.perf_counter()
    done = services.exporter().export(ACTOR, kind, subject, out)
    wrote = time.perf_counter() - start
    start = time.perf_counter()
    verified = verify_archive(out)
    checked = time.perf_counter() - start
    print(
        f"export {kind:8s} {subject}: {done.items} items, {verified.files} files, "
        f"{out.stat().st_size / 1e6:.2f} MB; write {wrote * 1000:.0f} ms, "
        f"verify {checked * 1000:.0f} ms"
    )


def bench_export(services: Services, data: Path, root: Path) -> None:
    start = time.perf_counter()
    services.ingest(
        str(data / LOBBY),
        IngestOptions(camera_id="lobby"),
        start=datetime.now(UTC) - timedelta(hours=1),
    )
    print(f"ingested the Intel lobby video in {time.perf_counter() - start:.0f} s")
    best = services.catalog.best_appearance(label="person")
    assert best is not None and best.track_id is not None
    ids = list(range(1, services.catalog.count_tracks() + 1))
    tracks = services.catalog.tracks(ids)
    longest = max(tracks, key=lambda t: t.appearances)
    _export(services, "sighting", longest.id, root / "sighting.zip")
    audited = AuditedSearch(
        search=services.search(),
        access=services.access,
        blobs=services.blobs,
        catalog=services.catalog,
    )
    example = Example(kind="track", track_id=longest.id)
    result = audited.run(ACTOR, example, SearchOptions(filters=SearchFilters()))
    _export(services, "search", result.audit_id, root / "search.zip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="WARNING"))
    root = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    try:
        settings = _settings(root, args.data, None)
        upgrade(settings.database_url)
        services = build_services(settings)
        try:
            _warm_up(services)
            bench_compare(services, args.data, args.repeats)
            bench_export(services, args.data, root)
        finally:
            services.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
