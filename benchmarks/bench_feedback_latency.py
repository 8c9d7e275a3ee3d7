"""What feedback costs an operator: marking a hit and re-running a search with verdicts.

Ingests the API tests' world (the Intel lobby video and MOT17-09) into a temporary SQLite
catalog, searches by the best person appearance (min_score 0.3), then times (median of
`--repeat`) a plain audited search, a re-run with no verdicts, with the two lowest-ranked
tracks confirmed, with the best other track also rejected, and one mark.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_feedback_latency.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from surveil.config import load_settings
from surveil.container import build_services
from surveil.domain import FeedbackTarget, SearchFilters
from surveil.ingest.pipeline import IngestOptions
from surveil.search.audited import Actor, AuditedSearch, Example, SearchOptions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `fn` over `repeat` runs after one warm-up, in ms."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    data, models = args.data.resolve(), args.data.resolve() / "models"
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            overrides={
                "storage.root": str(Path(tmp) / "data"),
                "database.url": f"sqlite:///{tmp}/catalog.db",
                "model_dir": str(models),
                "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
                "logging.level": "WARNING",
            }
        )
        s = build_services(settings)
        lobby = data / "videos/intel_sample_videos/one-by-one-person-detection.mp4"
        s.ingest(str(lobby), IngestOptions(camera_id="lobby"), start=T0)
        mot = data / "mot/MOT17-mini/train/MOT17-09-FRCNN/img1"
        s.ingest(
            str(mot),
            IngestOptions(camera_id="cam09", all_frames=True),
            start=T0 + timedelta(minutes=5),
        )
        example = s.catalog.best_appearance(label="person")
        assert example is not None
        actor = Actor(key_id=None, name="bench", role="cli")
        audited = AuditedSearch(
            search=s.search(), access=s.access, blobs=s.blobs, catalog=s.catalog
        )
        how = SearchOptions(filters=SearchFilters(min_score=0.3), limit=200)
        ask = Example(kind="appearance", appearance_id=example.id)
        done = audited.run(actor, ask, how)
        ranked = sorted(done.result.sightings, key=lambda x: -x.best_score)
        tracks = [x.track_id for x in ranked if x.track_id is not None]
        fb, aid = s.feedback(), done.audit_id
        rerun = lambda: fb.rerun(actor, aid, limit=200)  # noqa: E731
        print(f"{len(tracks)} person tracks found; median of {args.repeat}, ms:")
        plain = median_ms(lambda: audited.run(actor, ask, how), args.repeat)
        print(f"  audited search                  {plain:7.1f}")
        print(f"  re-run, no verdicts             {median_ms(rerun, args.repeat):7.1f}")
        for track in tracks[-2:]:
            fb.mark(actor, FeedbackTarget(audit_id=aid, track_id=track), "confirmed")
        print(f"  re-run, 2 confirmed             {median_ms(rerun, args.repeat):7.1f}")
        mark = FeedbackTarget(audit_id=aid, track_id=tracks[1])
        fb.mark(actor, mark, "rejected")
        print(f"  re-run, 2 confirmed, 1 rejected {median_ms(rerun, args.repeat):7.1f}")
        marking = median_ms(lambda: fb.mark(actor, mark, "rejected"), args.repeat)
        print(f"  mark one hit                    {marking:7.1f}")
        s.close()


if __name__ == "__main__":
    main()
