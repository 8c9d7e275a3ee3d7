"""Live ingest through shared engines: one worker versus two, and a dead worker's hand-over.

Starts PostgreSQL's catalog (a fresh database on the local server), a Milvus Lite gRPC
server and a moto S3 server as processes, then `surveil run` workers (each with a
storage root of its own) on looping file cameras, all meeting only in those engines:

- throughput: keyframes and appearances committed per second over a window, with one
  worker and with two (same cameras, fresh catalog each);
- hand-over: a worker killed with SIGKILL; seconds until its cameras are leased by the
  other, and until the first keyframe the other commits for each of them.

    .venv/bin/python benchmarks/bench_scaleout.py --data ../shared/data --seconds 60

The workers share this machine's cores: on two cores two workers compete for the same
CPU, so the figure shows the coordination's cost, not a second host's gain.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import yaml
from bench_milvus import LiteServer

from surveil.storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
#: index.milvus.keepalive_seconds against Milvus Lite's server (see the setting).
LITE_KEEPALIVE_SECONDS = "300"

CAMERAS = {
    "lobby": "videos/intel_sample_videos/one-by-one-person-detection.mp4",
    "lot": "videos/intel_sample_videos/car-detection.mp4",
    "street": "videos/mmtracking_demo/demo_MOT17-04_frames1-8.mp4",
    "junction": "videos/ua_detrac_evadb/ua_detrac.mp4",
}
PG = "postgresql://127.0.0.1:5432"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}


@dataclass
class Engines:
    milvus: str
    s3: str


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def engines(tmp: Path) -> Iterator[Engines]:
    """Milvus Lite and moto S3 servers on loopback, for this run only."""
    milvus = LiteServer(tmp / "milvus")
    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **CREDENTIALS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)
        yield Engines(milvus.uri, f"http://127.0.0.1:{port}")
    finally:
        moto.kill()
        moto.wait()
        milvus.stop()


@contextmanager
def catalog() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+psycopg://127.0.0.1:5432/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        return list(conn.execute(sql).fetchall())


class Site:
    """Workers of one run: config, environment, processes."""

    def __init__(self, tmp: Path, data: Path, url: str, eng: Engines, lease: float) -> None:
        self.tmp, self.url = tmp, url
        models = data / "models"
        config = tmp / "site.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "model_dir": str(models),
                    "detector": {"weights": str(models / "yolov8n_int8_dynamic.onnx")},
                    "live": {"lease_seconds": lease, "health_seconds": 1.0},
                    "cameras": [{"id": c, "url": str(data / p)} for c, p in CAMERAS.items()],
                }
            )
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
        self.env.update(
            CREDENTIALS,
            SURVEIL_CONFIG=str(config),
            SURVEIL_DATABASE__URL=url,
            SURVEIL_INDEX__BACKEND="milvus",
            SURVEIL_INDEX__MILVUS__URI=eng.milvus,
            SURVEIL_INDEX__MILVUS__KEEPALIVE_SECONDS=LITE_KEEPALIVE_SECONDS,
            SURVEIL_INDEX__MILVUS__COLLECTION_PREFIX=f"b{uuid.uuid4().hex[:8]}_",
            SURVEIL_STORAGE__BLOBS="s3",
            SURVEIL_STORAGE__S3__ENDPOINT_URL=eng.s3,
            SURVEIL_STORAGE__S3__BUCKET=f"bench-{uuid.uuid4().hex[:8]}",
            SURVEIL_STORAGE__S3__ADDRESSING_STYLE="path",
            SURVEIL_STORAGE__S3__CREATE_BUCKET="true",
            SURVEIL_LOGGING__LEVEL="WARNING",
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        env = {**self.env, "SURVEIL_STORAGE__ROOT": str(self.tmp / name)}
        env["SURVEIL_LIVE__WORKER_ID"] = name
        with (self.tmp / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "surveil.cli", "run"], env=env, stdout=log, stderr=log
            )

    def holders(self) -> dict[str, str]:
        now = datetime.now(UTC)
        got = rows(self.url, "SELECT camera_id, owner, lease_until FROM camera_leases")
        return {str(c): str(o) for c, o, until in got if _utc(until) > now}

    def totals(self) -> tuple[int, int]:
        k = rows(self.url, "SELECT count(*) FROM keyframes")[0][0]
        a = rows(self.url, "SELECT count(*) FROM appearances")[0][0]
        return int(str(k)), int(str(a))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _utc(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def throughput(site: Site, workers: int, seconds: float) -> tuple[float, float]:
    """Keyframes/s and appearances/s committed over `seconds` once every camera is read."""
    for n in range(workers):
        site.start(f"w{n}")
    wait_for(lambda: len(site.holders()) == len(CAMERAS) and site.totals()[0] > 0, 300)
    time.sleep(5.0)  # past start-up's first batches
    k0, a0 = site.totals()
    t0 = time.monotonic()
    time.sleep(seconds)
    k1, a1 = site.totals()
    took = time.monotonic() - t0
    return (k1 - k0) / took, (a1 - a0) / took


def handover(site: Site) -> tuple[float, float]:
    """Kill w0: seconds until its cameras are leased by w1, and until each is read again."""
    held = [c for c, w in site.holders().items() if w == "w0"]
    killed = datetime.now(UTC)
    site.procs["w0"].kill()
    moved = wait_for(lambda: all(site.holders().get(c) == "w1" for c in held), 120)

    def read_again() -> bool:
        for camera in held:
            newest = rows(site.url, f"SELECT max(ts) FROM keyframes WHERE camera_id = '{camera}'")
            if newest[0][0] is None or _utc(newest[0][0]) <= killed:
                return False
        return True

    resumed = wait_for(read_again, 300)
    return moved, resumed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seconds", type=float, default=60.0, help="throughput window")
    parser.add_argument("--lease", type=float, default=15.0, help="live.lease_seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, engines(Path(tmp_name)) as eng:
        tmp = Path(tmp_name)
        print(f"{len(CAMERAS)} looping file cameras, window {args.seconds:.0f} s")
        for workers in (1, 2):
            with catalog() as url:
                run_dir = tmp / f"run{workers}"
                run_dir.mkdir()
                site = Site(run_dir, args.data, url, eng, args.lease)
                try:
                    kps, aps = throughput(site, workers, args.seconds)
                    print(f"{workers} worker(s): {kps:.2f} keyframes/s, {aps:.1f} appearances/s")
                    if workers == 2:
                        moved, resumed = handover(site)
                        print(
                            f"kill -9 of a worker (lease {args.lease:.0f} s): cameras leased "
                            f"by the other after {moved:.1f} s, read again after {resumed:.1f} s"
                        )
                finally:
                    site.stop()


if __name__ == "__main__":
    main()
