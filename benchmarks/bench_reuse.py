"""What skipping the embedder for sure continuations saves, and what it costs in vectors.

Ingests each sample video through the real pipeline with `tracking.reuse_embeddings` off
and on (alternating, `--repeat` times) and prints keyframes/s against the bare detector on
the same keyframes (the best of a run before and after each ingest), crops embedded, the
stage times and tracks formed. With reuse on it also records every crop the pipeline saw,
embeds all of them afterwards and reports:

- fidelity: cosine between the vector a continued crop carried and its own embedding;
- search vectors: cosine between each track's pooled vector and the one embedding every
  member would have given (same quality weights), which is what a search scores against.

    .venv/bin/python benchmarks/bench_reuse.py --data ../shared/data [--repeat 3]
        [--set reembed_seconds=4 --set reuse_iou=0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import VIDEOS, _bare_rate, _kept_images, _settings, _warm_up

from surveil.config import LoggingSettings, Settings
from surveil.container import build_services
from surveil.domain import Crop, Keyframe
from surveil.ingest.pipeline import IngestOptions
from surveil.ingest.tracks import Assigned, IngestTracks
from surveil.logs import configure_logging
from surveil.tracking.state import pool_vectors

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Seen:
    """Every crop a run tracked: image, track, whether it was continued, its quality."""

    images: list[np.ndarray] = field(default_factory=list)
    tracks: list[str] = field(default_factory=list)
    carried: list[np.ndarray | None] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)
    spaces: list[str] = field(default_factory=list)


def _recording(tracks: IngestTracks, seen: Seen) -> None:
    """Wrap one pipeline's `assign` to record what it decided (benchmark instrumentation)."""
    assign = tracks.assign

    def recorded(
        batch: Sequence[Keyframe], crops: Sequence[Sequence[Crop]], plan: Any, *rest: Any
    ) -> Assigned:
        out = assign(batch, crops, plan, *rest)
        for k, frame in enumerate(crops):
            for n, crop in enumerate(frame):
                continued = out.qualities[k][n] == 0.0
                seen.images.append(crop.image)
                seen.tracks.append(out.keys[k][n])
                seen.carried.append(out.vectors[k][n][1] if continued else None)
                seen.qualities.append(plan.qualities[k][n])
                seen.spaces.append(out.vectors[k][n][0])
        return out

    tracks.assign = recorded  # type: ignore[method-assign,assignment]


def _with(settings: Settings, reuse: bool, overrides: dict[str, float]) -> Settings:
    tracking = settings.tracking.model_copy(update={"reuse_embeddings": reuse, **overrides})
    return settings.model_copy(update={"tracking": tracking})


def run_once(
    video: str, args: argparse.Namespace, reuse: bool, seen: Seen | None
) -> dict[str, float]:
    """One ingest into a fresh catalog; keyframes/s, ratio, embedded crops, stage times."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = _with(_settings(Path(tmp), args.data, None), reuse, args.overrides)
        services = build_services(settings)
        _warm_up(services)
        images = _kept_images(settings, args.data / VIDEOS[video], False)
        detector = services.detector()
        bare = _bare_rate(detector, images, settings.detector.batch_size)
        pipeline = services.ingest_pipeline()
        if seen is not None:
            _recording(pipeline.tracks, seen)
        services.ingest_pipeline = lambda: pipeline  # type: ignore[method-assign]
        started = time.perf_counter()
        stats = services.ingest(str(args.data / VIDEOS[video]), IngestOptions(video), start=START)
        wall = time.perf_counter() - started
        bare = max(bare, _bare_rate(detector, images, settings.detector.batch_size))
        tracks = services.catalog.count_tracks()
        services.close()
    rate = stats.keyframes / wall
    return {
        "kf/s": rate,
        "bare": bare,
        "ratio": rate / bare,
        "embedded": stats.appearances - stats.reused_embeddings,
        "appearances": stats.appearances,
        "tracks": tracks,
        **{f"s:{k}": v for k, v in stats.seconds.items()},
    }


def _quantiles(values: Sequence[float]) -> str:
    q = np.quantile(np.asarray(values), [0.01, 0.05, 0.5])
    return f"p1 {q[0]:.3f}  p5 {q[1]:.3f}  p50 {q[2]:.3f}  min {min(values):.3f}  (n={len(values)})"


def fidelity(video: str, args: argparse.Namespace, seen: Seen) -> None:
    """Embed every crop the run saw; compare carried vectors and pooled vectors."""
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), args.data, None))
        fresh: list[np.ndarray | None] = [None] * len(seen.images)
        for space in ("person", "general"):
            idx = [i for i, s in enumerate(seen.spaces) if s == space]
            if idx:
                vecs = services.embedder(space).embed([seen.images[i] for i in idx])
                for i, v in zip(idx, vecs, strict=True):
                    fresh[i] = v
        services.close()
    full = [v for v in fresh if v is not None]
    carried = [
        float(np.dot(c, f)) for c, f in zip(seen.carried, full, strict=True) if c is not None
    ]
    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(seen.tracks):
        members[key].append(i)
    agreement = []
    for idx in members.values():
        if all(seen.carried[i] is None for i in idx):
            continue  # nothing carried: the same vector either way
        weights = [0.0 if seen.carried[i] is not None else seen.qualities[i] for i in idx]
        used = np.stack([full[i] for i in idx])
        pooled = pool_vectors(used, weights)
        everything = pool_vectors(used, [seen.qualities[i] for i in idx])
        agreement.append(float(np.dot(pooled, everything)))
    print(f"  {video}: carried vs own embedding   {_quantiles(carried)}")
    if agreement:
        print(f"  {video}: pooled vs all-embedded    {_quantiles(agreement)}")


def main() -> None:
    configure_logging(LoggingSettings(level="WARNING"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data")
    parser.add_argument("--video", choices=sorted(VIDEOS), action="append")
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting (default 2)")
    parser.add_argument(
        "--set", action="append", default=[], help="a tracking setting for the reuse runs, k=v"
    )
    args = parser.parse_args()
    args.overrides = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    for video in args.video or sorted(VIDEOS):
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        seen = Seen()
        for n in range(args.repeat):
            for reuse in (False, True):
                runs[reuse].append(run_once(video, args, reuse, seen if reuse and n == 0 else None))
        print(f"\n== {video} ({args.repeat} runs each, medians; tracking {args.overrides or ''})")
        for reuse, found in runs.items():
            med = {k: statistics.median(r[k] for r in found) for k in found[0]}
            stages = "  ".join(
                f"{k[2:]} {v:.2f}"
                for k, v in sorted(med.items(), key=lambda kv: -kv[1])
                if k.startswith("s:") and v >= 0.05
            )
            ratios = ", ".join(f"{r['ratio']:.2f}" for r in found)
            print(
                f"  reuse {'on ' if reuse else 'off'}: {med['kf/s']:6.2f} kf/s  bare "
                f"{med['bare']:5.1f}  ratio {med['ratio']:.2f} (runs: {ratios})  embedded "
                f"{med['embedded']:.0f}/{med['appearances']:.0f}  tracks {med['tracks']:.0f}"
            )
            print(f"      stages (s): {stages}")
        fidelity(video, args, seen)


if __name__ == "__main__":
    main()
