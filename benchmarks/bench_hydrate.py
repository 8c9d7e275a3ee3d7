"""Search hydration: a search's candidate tracks, their members and the members' vectors.

Fills a migrated catalog (a temp SQLite file, and a throw-away PostgreSQL database created
on the given server and dropped afterwards) with tracks the way ingest leaves them:
members of concurrent tracks interleaved in id order, 512-d float32 embeddings, track
lengths geometric around the sample videos' mean. Then times the search's hydration
of random sets of candidate tracks as a search does it (`_hydrate`: every candidate's
members' vectors, re-scored; then `_sightings`: whole rows of the tracks shown) and prints
p50/p99 per back-end, without filters and with camera and time filters. Last, whole
audited searches by stored appearance over the same catalog, timed per stage.

    .venv/bin/python benchmarks/bench_hydrate.py
    .venv/bin/python benchmarks/bench_hydrate.py --backends sqlite --appearances 50000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
from bench_catalog import DEFAULT_PG, database  # same folder: run as a script
from sqlalchemy import Engine, Table, insert

from surveil.config import LoggingSettings, load_settings
from surveil.container import build_services
from surveil.domain import SearchFilters, SearchQuery
from surveil.logs import configure_logging
from surveil.search.audited import Actor, AuditedSearch, Example, SearchOptions
from surveil.search.by_example import STAGES, Stopwatch, _hydrate, _sightings
from surveil.storage.db import make_engine, make_session_factory
from surveil.storage.repositories import SqlCatalog
from surveil.storage.tables import (
    AppearanceRow,
    CameraRow,
    KeyframeRow,
    SourceRow,
    TrackRow,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CAMERAS = 8
#: Objects in view of one camera at once: their members interleave in insertion order.
CONCURRENT = 12
ROWS_PER_INSERT = 2_000


def _table(row: type[Any]) -> Table:
    return cast(Table, row.__table__)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to store: per track its camera, length and start second."""

    lengths: np.ndarray
    cameras: np.ndarray
    starts: np.ndarray


def plan_tracks(appearances: int, mean: float, seed: int) -> Plan:
    """Track lengths (geometric, capped at 90 like the junction's longest) until `appearances`.

    Each camera keeps CONCURRENT tracks in view: a track starts when an earlier one on
    that camera ends, so members of neighbouring tracks share seconds and interleave.
    """
    rng = np.random.default_rng(seed)
    lengths: list[int] = []
    total = 0
    while total < appearances:
        n = int(min(rng.geometric(1.0 / mean), 90, appearances - total))
        lengths.append(n)
        total += n
    cams = np.arange(len(lengths)) % CAMERAS
    starts = np.zeros(len(lengths), np.int64)
    free = np.zeros((CAMERAS, CONCURRENT), np.int64)  # second each slot is free again
    for t, (cam, n) in enumerate(zip(cams, lengths, strict=True)):
        slot = int(np.argmin(free[cam]))
        starts[t] = free[cam, slot]
        free[cam, slot] += n + int(rng.integers(1, 30))
    return Plan(np.array(lengths), cams, starts)


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return cast(np.ndarray, v / np.linalg.norm(v, axis=1, keepdims=True))


def fill(engine: Engine, plan: Plan, dim: int, seed: int) -> int:
    """Store cameras, one source each, tracks, then members (and a keyframe each) by time."""
    rng = np.random.default_rng(seed + 1)
    n_tracks = len(plan.lengths)
    pooled = _unit(rng, n_tracks, dim)
    with engine.begin() as conn:
        conn.execute(
            insert(_table(CameraRow)),
            [{"id": f"cam{c}", "name": f"cam{c}", "enabled": True} for c in range(CAMERAS)],
        )
        conn.execute(
            insert(_table(SourceRow)),
            [
                {"id": c + 1, "camera_id": f"cam{c}", "uri": "bench", "fingerprint": "f"}
                | {"start_ts": T0, "fps": 25.0, "frames_read": 0, "complete": True}
                for c in range(CAMERAS)
            ],
        )
        tracks = [
            {
                "id": t + 1,
                "key": f"bench:{t}",
                "camera_id": f"cam{plan.cameras[t]}",
                "space": "person",
                "label": "person",
                "label_group": "person",
                "first_ts": T0 + timedelta(seconds=int(plan.starts[t])),
                "last_ts": T0 + timedelta(seconds=int(plan.starts[t] + plan.lengths[t] - 1)),
                "appearances": int(plan.lengths[t]),
                "best_appearance_id": None,
                "best_quality": 1.0,
                "embedding": pooled[t].tobytes(),
                "dim": dim,
                "model_id": f"bench-{dim}@1",
                "closed": True,
            }
            for t in range(n_tracks)
        ]
        for start in range(0, n_tracks, ROWS_PER_INSERT):
            conn.execute(insert(_table(TrackRow)), tracks[start : start + ROWS_PER_INSERT])
    # Members in the order ingest commits them: by time, so tracks interleave on disk.
    track_of = np.repeat(np.arange(n_tracks), plan.lengths)
    offset = np.concatenate([np.arange(n) for n in plan.lengths])
    second = plan.starts[track_of] + offset
    order = np.lexsort((track_of, second))
    total = len(order)
    for start in range(0, total, ROWS_PER_INSERT):
        picked = order[start : start + ROWS_PER_INSERT]
        own = pooled[track_of[picked]] + 0.3 * _unit(rng, len(picked), dim)
        own /= np.linalg.norm(own, axis=1, keepdims=True)
        _insert_members(engine, start, picked, track_of, second, plan, own, dim)
    return total


def _insert_members(
    engine: Engine,
    first_id: int,
    picked: np.ndarray,
    track_of: np.ndarray,
    second: np.ndarray,
    plan: Plan,
    vectors: np.ndarray,
    dim: int,
) -> None:
    """One batch of members, each on its own keyframe (ids follow insertion order)."""
    keyframes, members = [], []
    for n, i in enumerate(picked.tolist()):
        row_id = first_id + n + 1
        track = int(track_of[i])
        cam = int(plan.cameras[track])
        ts = T0 + timedelta(seconds=int(second[i]))
        keyframes.append(
            {"id": row_id, "camera_id": f"cam{cam}", "source_id": cam + 1, "frame_index": row_id}
            | {"ts": ts, "width": 1920, "height": 1080, "image_path": f"kf/{row_id}.jpg"}
        )
        members.append(
            {"id": row_id, "keyframe_id": row_id, "camera_id": f"cam{cam}", "ts": ts}
            | {"frame_index": row_id, "label": "person", "confidence": 0.8, "x1": 10.0}
            | {"y1": 20.0, "x2": 74.0, "y2": 148.0, "space": "person"}
            | {"model_id": f"bench-{dim}@1", "crop_path": f"crops/cam{cam}/{row_id}.jpg"}
            | {"embedding": vectors[n].tobytes(), "dim": dim, "legal_hold": False}
            | {"track_id": track + 1, "quality": 1.0}
        )
    with engine.begin() as conn:
        conn.execute(insert(_table(KeyframeRow)), keyframes)
        conn.execute(insert(_table(AppearanceRow)), members)


@dataclass(frozen=True, slots=True)
class Figures:
    """Per-run seconds of the two hydrate steps, and the members each read."""

    score: list[float]
    shown: list[float]
    scored_members: int
    shown_members: int


def time_hydrate(
    catalog: SqlCatalog, n_tracks: int, args: argparse.Namespace, filters: SearchFilters
) -> Figures:
    """Hydrate random candidate tracks as one search round does, `args.repeats` times.

    Step 1 (`_hydrate`): every candidate's members' vectors, re-scored. Step 2 (the
    hydrate part of `_sightings`): whole rows of the `--limit` best tracks, once a search.
    """
    rng = np.random.default_rng(7)
    vector = _unit(rng, 1, args.dim)[0]
    query = SearchQuery(space="person", vector=vector, filters=filters, limit=args.limit)
    score: list[float] = []
    shown: list[float] = []
    scored_members = shown_members = 0
    for n in range(args.repeats + 3):
        picked = rng.choice(n_tracks, size=args.candidates, replace=False) + 1
        candidates = [(int(t), 0.9 - 0.001 * k) for k, t in enumerate(picked)]
        start = time.perf_counter()
        scored = _hydrate(catalog, query, candidates)
        middle = time.perf_counter()
        clock = Stopwatch()
        best = [t for t, _ in scored.ranked(-1.0)[: args.limit]]
        sightings = _sightings(catalog, query, scored, best, clock)
        assert len(scored.best) == args.candidates, "every candidate track has members"
        if n >= 3:  # the first few warm the connection pool and statement caches
            score.append(middle - start)
            shown.append(clock.seconds["hydrate"])
            scored_members += len(scored.own)
            shown_members += sum(len(s.hits) for s in sightings)
    return Figures(score, shown, scored_members // args.repeats, shown_members // args.repeats)


def _ms(values: list[float]) -> str:
    p50, p99 = np.percentile(np.array(values) * 1000, [50, 99])
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def bench_one(url: str, backend: str, args: argparse.Namespace) -> None:
    """Fill one catalog, then print hydration p50/p99 without and with filters."""
    engine = make_engine(url)
    try:
        plan = plan_tracks(args.appearances, args.mean_members, seed=1)
        start = time.perf_counter()
        stored = fill(engine, plan, args.dim, seed=1)
        if backend == "postgres":  # what autovacuum does soon after a bulk load
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        print(
            f"{backend:8s} filled {stored:,} appearances in {len(plan.lengths):,} tracks "
            f"({args.dim}-d) in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        catalog = SqlCatalog(make_session_factory(engine))
        end = T0 + timedelta(seconds=int((plan.starts + plan.lengths).max()))
        cases = {
            "no filters": SearchFilters(min_score=-1.0),
            # Every camera over the whole span: the same members, through the filters' SQL.
            "camera+time filters": SearchFilters(
                cameras=frozenset(f"cam{c}" for c in range(CAMERAS)),
                since=T0,
                until=end,
                min_score=-1.0,
            ),
        }
        for name, filters in cases.items():
            got = time_hydrate(catalog, len(plan.lengths), args, filters)
            both = [a + b for a, b in zip(got.score, got.shown, strict=True)]
            print(
                f"{backend:8s} {name}: hydrate {args.candidates} candidate tracks "
                f"{_ms(both)} (score ~{got.scored_members} members: {_ms(got.score)}; "
                f"rows of the {args.limit} shown, ~{got.shown_members} members: "
                f"{_ms(got.shown)}; {args.repeats} runs)",
                flush=True,
            )
    finally:
        engine.dispose()
    if args.searches:
        with tempfile.TemporaryDirectory(prefix="surveil-bench-") as tmp:
            time_searches(url, Path(tmp), len(plan.lengths), args)


def time_searches(url: str, root: Path, n_tracks: int, args: argparse.Namespace) -> None:
    """Whole audited searches by stored appearance (as the API runs them), per stage p50.

    The index is built from the catalog first (reconcile), as `surveil serve` does at
    start-up; the search is the real SearchService behind AuditedSearch.
    """
    settings = load_settings(
        overrides={"storage.root": str(root), "database.url": url, "logging.level": "WARNING"}
    )
    services = build_services(settings)  # reconciles: one pooled vector per track indexed
    try:
        rng = np.random.default_rng(11)
        audited = AuditedSearch(
            search=services.search(),
            access=services.access,
            blobs=services.blobs,
            catalog=services.catalog,
        )
        actor = Actor(key_id=None, name="bench", role="cli")
        floors = {"default floor": SearchFilters(), "no floor": SearchFilters(min_score=-1.0)}
        for name, filters in floors.items():
            stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
            totals: list[float] = []
            for n in range(args.searches + 3):
                appearance_id = int(rng.integers(1, args.appearances + 1))
                example = Example(kind="appearance", appearance_id=appearance_id)
                start = time.perf_counter()
                done = audited.run(actor, example, SearchOptions(filters=filters))
                if n >= 3:
                    totals.append(time.perf_counter() - start)
                    for stage, ms in done.result.timings.ms().items():
                        stages[stage].append(ms)
            shown = ", ".join(f"{k} {np.median(v):.1f}" for k, v in stages.items())
            print(
                f"search by appearance ({name}, {args.searches} searches over {n_tracks:,} "
                f"tracks): total {_ms(totals)}; stage p50 ms: {shown}",
                flush=True,
            )
    finally:
        services.close()


def main() -> None:
    """Parse options and run each back-end asked for."""
    configure_logging(LoggingSettings(level="WARNING"))  # figures on stdout, no chatter
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated list")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server to use")
    parser.add_argument(
        "--appearances", type=int, default=200_000, help="appearances stored (in tracks)"
    )
    parser.add_argument(
        "--mean-members",
        type=float,
        default=10.0,
        help="mean track length (the sample data's: 10.0; the real videos': ~35)",
    )
    parser.add_argument("--dim", type=int, default=512, help="embedding size")
    parser.add_argument("--candidates", type=int, default=200, help="tracks per hydration")
    parser.add_argument("--limit", type=int, default=50, help="sightings shown (search.limit)")
    parser.add_argument("--repeats", type=int, default=100, help="hydrations timed")
    parser.add_argument(
        "--searches", type=int, default=50, help="whole searches timed per stage (0: none)"
    )
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with database(backend, args.pg_url) as url:
            bench_one(url, backend, args)


if __name__ == "__main__":
    main()
