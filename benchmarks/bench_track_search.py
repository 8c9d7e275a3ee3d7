"""Vectors a query scans with tracks versus one per appearance, and what a search costs.

Ingests every sample source through the real pipeline into one catalog (the Intel lobby,
the UA-DETRAC junction, the MOT17-mini sequences at every frame, the Market-1501 frames
one by one at their own times, as the demo does),
prints appearances and tracks per source (a query scans one vector per track, where it
used to scan one per appearance), then times `SearchService.by_appearance` end to end
(index search, hydration of the matched tracks' members, re-scoring) from a sample of
stored appearances, and raw FAISS exact search over as many random vectors as there are
appearances and as there are tracks, scaled up by `--scale` (the cost a query saves at
the size of a real site).

    .venv/bin/python benchmarks/bench_track_search.py --data ../shared/data [--scale 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import _settings

from surveil.config import LoggingSettings
from surveil.container import Services, build_services
from surveil.domain import SPACES, SearchFilters
from surveil.ingest.pipeline import IngestOptions
from surveil.logs import configure_logging

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)
MARKET = Path("reid/market1501_person_search_demo/frames")
SOURCES = {
    "lobby": ("videos/intel_sample_videos/one-by-one-person-detection.mp4", False),
    "junction": ("videos/ua_detrac_evadb/ua_detrac.mp4", False),
    **{
        f"mot{seq[6:8]}": (f"mot/MOT17-mini/train/{seq}/img1", True)
        for seq in (
            "MOT17-02-FRCNN",
            "MOT17-04-FRCNN",
            "MOT17-05-FRCNN",
            "MOT17-09-FRCNN",
            "MOT17-10-FRCNN",
            "MOT17-11-FRCNN",
            "MOT17-13-FRCNN",
        )
    },
}


def _market(services: Services, data: Path, tmp: Path) -> None:
    """Each Market-1501 frame as a one-frame source timed by its number (as the demo)."""
    for frame in sorted((data / MARKET).glob("c*s1_*.jpg")):
        camera, number = frame.stem.split("s1_")
        holder = tmp / frame.stem
        holder.mkdir()
        shutil.copyfile(frame, holder / frame.name)
        start = T0 - timedelta(hours=1) + timedelta(seconds=int(number) / 25)
        services.ingest(
            str(holder), IngestOptions(f"market-{camera}", all_frames=True), start=start
        )


def ingest_all(services: Services, data: Path, tmp: Path) -> None:
    """Every source as its own camera, an hour apart; prints appearances and tracks."""
    print(f"{'camera':<11}{'appearances':>12}{'tracks':>8}{'per track':>10}")
    total_a = total_t = 0
    for n, (camera, (pattern, all_frames)) in enumerate([*SOURCES.items(), ("market", ("", True))]):
        before_a = sum(services.catalog.count_appearances(s) for s in SPACES)
        before_t = services.catalog.count_tracks()
        if camera == "market":
            _market(services, data, tmp)
        else:
            options = IngestOptions(camera_id=camera, all_frames=all_frames)
            services.ingest(str(data / pattern), options, start=T0 + timedelta(hours=n))
        apps = sum(services.catalog.count_appearances(s) for s in SPACES) - before_a
        tracks = services.catalog.count_tracks() - before_t
        total_a, total_t = total_a + apps, total_t + tracks
        print(f"{camera:<11}{apps:>12}{tracks:>8}{apps / max(tracks, 1):>10.1f}")
    print(f"{'all':<11}{total_a:>12}{total_t:>8}{total_a / max(total_t, 1):>10.1f}")


def time_searches(services: Services, queries: int) -> None:
    """End-to-end 'find similar' from stored appearances, default floor and no floor."""
    engine = create_engine(services.settings.database_url)
    with engine.connect() as conn:
        every = [int(r[0]) for r in conn.execute(text("SELECT id FROM appearances"))]
    engine.dispose()
    ids = random.sample(every, min(queries, len(every)))
    search = services.search()
    for name, filters in (("default floor", None), ("no floor", SearchFilters(min_score=-1.0))):
        times, sightings = [], []
        for appearance_id in ids:
            started = time.perf_counter()
            result = search.by_appearance(appearance_id, filters=filters)
            times.append(1000 * (time.perf_counter() - started))
            sightings.append(len(result.sightings))
        q = np.quantile(times, [0.5, 0.99])
        print(
            f"search ({name}, {len(ids)} queries): p50 {q[0]:.1f} ms  p99 {q[1]:.1f} ms, "
            f"sightings median {statistics.median(sightings):.0f}"
        )


def raw_scan(vectors: int, dim: int, queries: int = 50) -> float:
    """p50 ms of one exact inner-product query over `vectors` random unit vectors."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((vectors, dim), dtype=np.float32)
    faiss.normalize_L2(base)
    index = faiss.IndexFlatIP(dim)
    index.add(base)
    times = []
    for query in base[:queries]:
        started = time.perf_counter()
        index.search(query[None, :], 200)
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def main() -> None:
    configure_logging(LoggingSettings(level="WARNING"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--queries", type=int, default=100, help="searches to time")
    parser.add_argument("--scale", type=int, default=100, help="raw scan: sizes times this")
    args = parser.parse_args()
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), args.data, None))
        try:
            ingest_all(services, args.data, Path(tmp))
            time_searches(services, args.queries)
            apps = sum(services.catalog.count_appearances(s) for s in SPACES)
            tracks = services.catalog.count_tracks()
        finally:
            services.close()
    for dim in (512, 1280):
        one, per_track = raw_scan(apps * args.scale, dim), raw_scan(tracks * args.scale, dim)
        print(
            f"raw FAISS exact scan, {dim}-d: {apps * args.scale:,} vectors (one per appearance) "
            f"{one:.1f} ms, {tracks * args.scale:,} (one per track) {per_track:.2f} ms p50"
        )


if __name__ == "__main__":
    main()
