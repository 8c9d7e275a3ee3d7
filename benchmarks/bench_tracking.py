"""Tracking quality and cost on real frames with ground truth, and the pooling weights.

For each MOT17-mini sequence the real detector and embedders run once per frame (cached),
then the tracker runs over every frame, every 2nd and every 3rd frame, and prints per
sequence: tracks, mean purity (share of a track's gt-matched members that belong to its
majority identity; IoU >= 0.5), tracks mixing two fully visible identities, identity
switches and fragments. `--sweep` tries a grid of association settings on the same cached
detections. It then compares pooling weights (uniform, confidence, area, sharpness and
products) by retrieval: a pooled vector per identity from odd frames, queried by that
identity's crops from even frames among every identity of the sequence (mAP, rank-1).
Finally it ingests the Intel lobby video through the real pipeline and reports tracks,
appearances and the tracking stage's share of ingest time.

    .venv/bin/python benchmarks/bench_tracking.py --data ../shared/data [--sweep]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import _settings

from surveil.config import LoggingSettings, TrackingSettings
from surveil.container import Services, build_services
from surveil.domain import SPACES, Crop, space_for
from surveil.ingest.pipeline import IngestOptions
from surveil.logs import configure_logging
from surveil.tracking import CameraTracker, Member
from surveil.tracking.boxes import box_iou
from surveil.tracking.quality import crop_quality
from surveil.vision.crops import cut_crops, read_image

REPO = Path(__file__).resolve().parent.parent
MOT = "mot/MOT17-mini/train"
LOBBY = "videos/intel_sample_videos/one-by-one-person-detection.mp4"
T0 = datetime(2026, 1, 1, 8, tzinfo=UTC)
GROUPS = {"person": ["person"], "vehicle": ["car", "truck", "bus", "motorcycle", "bicycle"]}


@dataclass
class Det:
    """One detection of one frame: crop, embedding, and the gt identity it overlaps."""

    frame: int
    crop: Crop
    vec: np.ndarray
    gt: int | None
    visibility: float


def _gt(seq: Path) -> dict[int, list[tuple[int, tuple[float, ...], float]]]:
    """Pedestrian boxes per frame: (id, xyxy, visibility), 'consider' rows only."""
    out: dict[int, list[tuple[int, tuple[float, ...], float]]] = defaultdict(list)
    for line in (seq / "gt" / "gt.txt").read_text().splitlines():
        f, tid, x, y, w, h, consider, cls, vis = line.split(",")[:9]
        if int(consider) == 1 and int(cls) == 1:
            box = (float(x), float(y), float(x) + float(w), float(y) + float(h))
            out[int(f)].append((int(tid), box, float(vis)))
    return out


def _match(
    crops: list[Crop], gt: list[tuple[int, tuple[float, ...], float]]
) -> list[tuple[int | None, float]]:
    """Each crop's gt identity (IoU >= 0.5, one-to-one) and that identity's visibility."""
    out: list[tuple[int | None, float]] = [(None, 0.0)] * len(crops)
    if not crops or not gt:
        return out
    iou = box_iou(
        np.array([c.bbox for c in crops], np.float32), np.array([g[1] for g in gt], np.float32)
    )
    rows, cols = linear_sum_assignment(-iou)
    for r, c in zip(rows, cols, strict=True):
        if iou[r, c] >= 0.5:
            out[r] = (gt[c][0], gt[c][2])
    return out


def detect_sequence(services: Services, seq: Path) -> tuple[float, list[list[Det]]]:
    """Run the real detector and embedders on every frame of a sequence (persons only)."""
    fps = 30.0
    for line in (seq / "seqinfo.ini").read_text().splitlines():
        if line.startswith("frameRate="):
            fps = float(line.split("=")[1])
    gt = _gt(seq)
    s = services.settings
    frames = []
    for path in sorted((seq / "img1").glob("*.jpg")):
        n = int(path.stem)
        image = read_image(path)
        (dets,) = services.detector().detect([image])
        crops = [
            c
            for c in cut_crops(image, dets, padding=s.crops.padding, min_size=s.crops.min_size)
            if space_for(c.label, s.embedders.person_labels) == "person"
        ]
        vecs: list[np.ndarray] = (
            list(services.embedder("person").embed([c.image for c in crops])) if crops else []
        )
        ids = _match(crops, gt.get(n, []))
        frames.append(
            [Det(n, c, v, g, vis) for c, v, (g, vis) in zip(crops, vecs, ids, strict=True)]
        )
    return fps, frames


@dataclass
class Score:
    """Tracking quality of one run over one sequence."""

    tracks: int
    members: int
    purity: float
    mixed: int
    switches: int
    fragments: int
    step_ms: float


def track_sequence(
    frames: list[list[Det]], fps: float, stride: int, settings: TrackingSettings
) -> Score:
    """Run the tracker over every `stride`-th frame and score it against the gt."""
    tracker = CameraTracker(settings, GROUPS)
    assigned: list[tuple[Det, str]] = []
    spent = 0.0
    for frame in frames[::stride]:
        if not frame:
            continue
        ts = T0 + timedelta(seconds=(frame[0].frame - 1) / fps)
        members = [
            Member(ts, d.crop.bbox, d.crop.label, d.crop.confidence, d.vec, d.crop.confidence)
            for d in frame
        ]
        started = time.perf_counter()
        keys = tracker.step(ts, members, [f"{d.frame}:{i}" for i, d in enumerate(frame)])
        spent += time.perf_counter() - started
        assigned += list(zip(frame, keys, strict=True))
    return _score(assigned, spent, sum(1 for f in frames[::stride] if f))


def _score(assigned: list[tuple[Det, str]], spent: float, steps: int) -> Score:
    by_track: dict[str, list[Det]] = defaultdict(list)
    for det, key in assigned:
        by_track[key].append(det)
    purities, mixed = [], 0
    for members in by_track.values():
        ids = [d.gt for d in members if d.gt is not None]
        if ids:
            purities.append(Counter(ids).most_common(1)[0][1] / len(ids))
        visible = {d.gt for d in members if d.gt is not None and d.visibility >= 0.9}
        mixed += len(visible) > 1
    per_id: dict[int, list[str]] = defaultdict(list)
    for det, key in sorted(assigned, key=lambda a: a[0].frame):
        if det.gt is not None:
            per_id[det.gt].append(key)
    switches = sum(sum(a != b for a, b in itertools.pairwise(keys)) for keys in per_id.values())
    fragments = sum(len(set(keys)) - 1 for keys in per_id.values())
    return Score(
        tracks=len(by_track),
        members=len(assigned),
        purity=statistics.fmean(purities) if purities else 1.0,
        mixed=mixed,
        switches=switches,
        fragments=fragments,
        step_ms=1000 * spent / max(steps, 1),
    )


def report_tracking(
    cached: dict[str, tuple[float, list[list[Det]]]], settings: TrackingSettings
) -> None:
    print(f"\n== tracking, {settings.model_dump()}")
    print(
        f"{'sequence':<16}{'stride':>7}{'dets':>6}{'tracks':>7}{'purity':>8}{'mixed':>6}{'IDsw':>6}{'frag':>6}{'ms/step':>9}"
    )
    for name, (fps, frames) in cached.items():
        for stride in (1, 2, 3):
            s = track_sequence(frames, fps, stride, settings)
            print(
                f"{name:<16}{stride:>7}{s.members:>6}{s.tracks:>7}{s.purity:>8.3f}{s.mixed:>6}"
                f"{s.switches:>6}{s.fragments:>6}{s.step_ms:>9.3f}"
            )


def sweep(cached: dict[str, tuple[float, list[list[Det]]]]) -> None:
    """A grid over the association settings; worst purity and mixes decide first."""
    rows = []
    for cos, weight, gate in itertools.product(
        (0.45, 0.55, 0.65), (0.3, 0.5, 0.7), (0.5, 0.75, 1.0)
    ):
        settings = TrackingSettings(min_cosine_person=cos, motion_weight=weight, gate_heights=gate)
        scores = [
            track_sequence(frames, fps, stride, settings)
            for fps, frames in cached.values()
            for stride in (1, 2, 3)
        ]
        rows.append(
            (
                sum(s.mixed for s in scores),
                -min(s.purity for s in scores),
                sum(s.switches + s.fragments for s in scores),
                cos,
                weight,
                gate,
                statistics.fmean(s.purity for s in scores),
            )
        )
    print("\n== sweep (best first): mixed, worst purity, mean purity, switches+fragments")
    for mixed, worst, swfr, cos, weight, gate, mean in sorted(rows)[:10]:
        print(
            f"  min_cosine_person={cos:.2f} motion_weight={weight:.1f} gate_heights={gate:.2f}: "
            f"mixed {mixed}, worst purity {-worst:.3f}, mean {mean:.3f}, sw+frag {swfr}"
        )


def pooling(cached: dict[str, tuple[float, list[list[Det]]]]) -> None:
    """Which weights make the best pooled vector: odd frames pool, even frames query."""
    modes = (
        "uniform",
        "confidence",
        "area",
        "sharpness",
        "confidence_area",
        "confidence_sharpness",
    )
    print("\n== pooling weights: identity retrieval within each sequence (mAP, rank-1)")
    for mode in modes:
        settings = TrackingSettings(quality_weighting=mode)
        aps, top1 = [], []
        for _fps, frames in cached.values():
            dets = [d for f in frames for d in f if d.gt is not None]
            pools: dict[int, np.ndarray] = {}
            for gid in {d.gt for d in dets}:
                mem = [d for d in dets if d.gt == gid and d.frame % 2 == 1]
                if not mem:
                    continue
                w = np.array(
                    [
                        crop_quality(d.crop.image, d.crop.bbox, d.crop.confidence, settings)
                        for d in mem
                    ]
                )
                v = (w[:, None] * np.stack([d.vec for d in mem])).sum(0)
                pools[int(gid or 0)] = v / np.linalg.norm(v)
            ids = sorted(pools)
            matrix = np.stack([pools[i] for i in ids])
            for q in (d for d in dets if d.frame % 2 == 0 and d.gt in pools):
                order = [ids[i] for i in np.argsort(-(matrix @ q.vec))]
                rank = order.index(int(q.gt or 0)) + 1
                aps.append(1.0 / rank)
                top1.append(rank == 1)
        print(
            f"  {mode:<22} mAP {statistics.fmean(aps):.4f}  "
            f"rank-1 {statistics.fmean(top1):.4f}  ({len(aps)} queries)"
        )


def lobby(data: Path) -> None:
    """The Intel lobby video through the real ingest: tracks, appearances, tracking cost."""
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), data, None))
        started = time.perf_counter()
        stats = services.ingest(str(data / LOBBY), IngestOptions(camera_id="lobby"), start=T0)
        wall = time.perf_counter() - started
        tracks = services.catalog.count_tracks("person")
        persons = services.catalog.count_appearances("person")
        lengths = sorted(
            t.appearances for t in services.catalog.tracks(range(1, 10_000)) if t.space == "person"
        )
        services.close()
    track_s = stats.seconds.get("track", 0.0)
    print(
        f"\n== lobby ingest: {stats.keyframes} keyframes, "
        f"{persons} person appearances -> {tracks} person tracks"
    )
    print(f"  track lengths (appearances): {lengths}")
    print(
        f"  vectors a person query scans: {tracks} (one per track) "
        f"vs {persons} (one per appearance)"
    )
    print(f"  tracking stage {track_s:.3f} s of {wall:.1f} s ingest = {100 * track_s / wall:.2f} %")


def main() -> None:
    configure_logging(LoggingSettings(level="WARNING"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="sample data (default: ../shared/data)",
    )
    parser.add_argument("--sweep", action="store_true", help="also sweep association settings")
    parser.add_argument("--no-lobby", action="store_true", help="skip the lobby ingest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(_settings(Path(tmp), args.data, None))
        for space in SPACES:
            services.embedder(space).embed([np.zeros((128, 64, 3), np.uint8)])
        cached = {
            seq.name[:8]: detect_sequence(services, seq)
            for seq in sorted((args.data / MOT).iterdir())
        }
        services.close()
    report_tracking(cached, TrackingSettings())
    if args.sweep:
        sweep(cached)
    pooling(cached)
    if not args.no_lobby:
        lobby(args.data)


if __name__ == "__main__":
    main()
