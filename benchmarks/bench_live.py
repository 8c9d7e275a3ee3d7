"""Live ingest under load: 1, 4 and 8 looping-file cameras through the one batched model path.

Each run starts a `LiveService` (real readers, keyframe selection, detector, embedders,
PostgreSQL catalog, FAISS index) on N looping video files played at their native rate,
measures a fixed window after the models are loaded, and prints per run: keyframes
selected/s, keyframes and appearances committed/s, the drop rate (keyframes the models
could not keep up with / keyframes selected), capture-to-searchable latency (capture ->
committed and in the in-process index; p50/p99), batch sizes, process CPU and RSS.

    .venv/bin/python benchmarks/bench_live.py
    .venv/bin/python benchmarks/bench_live.py --cameras 1,4 --seconds 30 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from bench_catalog import DEFAULT_PG, database

from surveil.config import CameraSettings, LoggingSettings, Settings, load_settings
from surveil.container import Services, build_services
from surveil.ingest.live.cameras import live_cameras
from surveil.ingest.live.service import LiveService
from surveil.logs import configure_logging

VIDEOS = [
    "videos/intel_sample_videos/one-by-one-person-detection.mp4",  # 768x432 @ 10 fps
    "videos/intel_sample_videos/car-detection.mp4",  # 768x432 @ 12.5 fps
    "videos/ua_detrac_evadb/ua_detrac.mp4",  # 960x540, busy intersection
]


class Sampler:
    """CPU % (of one core) and RSS of this process, once a second, on a thread."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.cpu: list[float] = []
        self.rss: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._proc.cpu_percent(None)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.cpu.append(self._proc.cpu_percent(None))
            self.rss.append(self._proc.memory_info().rss / 2**20)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_once(services: Services, shared: Path, n: int, seconds: float) -> dict[str, Any]:
    """N cameras for `seconds` after warm-up; figures over that window only."""
    cams = [
        CameraSettings(id=f"bench{n}-{i}", url=str(shared / VIDEOS[i % len(VIDEOS)]))
        for i in range(n)
    ]
    settings = services.settings.model_copy(update={"cameras": cams})
    live = LiveService(services, live_cameras(settings))
    live.start()  # loads the models (warm-up) before any reader starts
    time.sleep(3.0)  # readers connect; the window starts in steady state
    t = live.totals
    sel0 = sum(s.selected for s in live.stats.values())
    kf0, app0, lat0 = t.keyframes, t.appearances, len(t.latencies)
    drops0 = t.pending_drops + t.buffer_drops
    sizes0 = Counter(t.batch_sizes)
    started = time.monotonic()
    with Sampler() as sampler:
        time.sleep(seconds)
    elapsed = time.monotonic() - started
    selected = sum(s.selected for s in live.stats.values()) - sel0
    keyframes, appearances = t.keyframes - kf0, t.appearances - app0
    drops = t.pending_drops + t.buffer_drops - drops0
    latencies = list(t.latencies)[lat0:]
    sizes = Counter(t.batch_sizes)
    sizes.subtract(sizes0)
    frames = sum(s.frames for s in live.stats.values())
    report = live.stop()
    return {
        "cameras": n,
        "seconds": round(elapsed, 1),
        "frames_per_s": round(frames / (elapsed + 3.0), 1),
        "keyframes_selected_per_s": round(selected / elapsed, 2),
        "keyframes_per_s": round(keyframes / elapsed, 2),
        "appearances_per_s": round(appearances / elapsed, 2),
        "drop_rate": round(drops / selected, 3) if selected else 0.0,
        "latency_p50_s": round(_pct(latencies, 0.5), 2),
        "latency_p99_s": round(_pct(latencies, 0.99), 2),
        "batch_size_mean": round(
            sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values())), 2
        ),
        "batch_sizes": {str(k): v for k, v in sorted(sizes.items()) if v > 0},
        "cpu_percent_mean": round(statistics.fmean(sampler.cpu), 1) if sampler.cpu else None,
        "rss_mib_max": round(max(sampler.rss), 1) if sampler.rss else None,
        "stage_seconds": {k: round(v, 1) for k, v in live.pipeline_timer().items()},
        "clean_stop_s": round(report.seconds, 2) if report.clean else None,
    }


def _settings(url: str, root: Path, shared: Path, args: argparse.Namespace) -> Settings:
    models = shared / "models"
    return load_settings(
        overrides={
            "storage.root": str(root),
            "database.url": url,
            "model_dir": str(models),
            "detector.weights": str(models / "yolov8n_int8_dynamic.onnx"),
            "live.batch_size": args.batch_size,
            "live.pending_size": args.pending,
            "live.from_catalog": False,
            "live.shutdown_seconds": 30.0,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", default="1,4,8", help="camera counts to run")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per run")
    parser.add_argument("--batch-size", type=int, default=8, help="live.batch_size")
    parser.add_argument("--pending", type=int, default=64, help="live.pending_size")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server to use")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="WARNING"))
    shared = Path(args.data)
    results = []
    with database("postgres", args.pg_url) as url, tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(url, Path(tmp), shared, args))
        try:
            for n in (int(x) for x in args.cameras.split(",")):
                result = run_once(services, shared, n, args.seconds)
                results.append(result)
                print(json.dumps(result) if args.json else _line(result), flush=True)
        finally:
            services.close()
    return 0


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['cameras']} cam: {r['frames_per_s']} frames/s, "
        f"{r['keyframes_selected_per_s']} kf/s selected, {r['keyframes_per_s']} kf/s and "
        f"{r['appearances_per_s']} appearances/s committed, drop rate {r['drop_rate']:.1%}, "
        f"latency p50 {r['latency_p50_s']} s p99 {r['latency_p99_s']} s, "
        f"batch mean {r['batch_size_mean']} {r['batch_sizes']}, CPU {r['cpu_percent_mean']}%, "
        f"RSS {r['rss_mib_max']} MiB, stages {r['stage_seconds']}"
    )


if __name__ == "__main__":
    sys.exit(main())
