"""Search latency through HTTP: `surveil serve` under 1, 4 and 16 concurrent clients.

Ingests a real video with the real models into a throw-away PostgreSQL database (or
SQLite), starts `surveil serve` as its own process, creates an operator key with
`surveil keys create`, and fires searches at `POST /api/v1/search` from N client
threads at once (each its own HTTP connection). Prints, per concurrency and query kind:
requests/s, client-side latency p50/p95/p99, the server's own `Server-Timing` p50 (the
total, then each stage), and the server process's resident memory (peak, sampled every
50 ms).

    .venv/bin/python benchmarks/bench_api.py --data ../shared/data
    .venv/bin/python benchmarks/bench_api.py --clients 1,4 --requests 100 --backend sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from bench_catalog import DEFAULT_PG, database  # same folder: run as a script

LOBBY = "videos/intel_sample_videos/one-by-one-person-detection.mp4"


@dataclass
class Sample:
    """One request: wall time seen by the client, time the server says it searched."""

    seconds: float
    server_ms: float | None
    #: The server's own per-stage milliseconds (Server-Timing), total left out.
    stages: dict[str, float] = field(default_factory=dict)


def _cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "surveil.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"surveil {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`surveil serve` on loopback, ready when /readyz says so; SIGTERM afterwards."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "surveil.cli", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-4000:]
                raise SystemExit(f"surveil serve exited with {proc.returncode}:\n{tail}")
            time.sleep(0.2)
        else:
            raise SystemExit("surveil serve did not become ready in 120 s")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class PeakRss:
    """Samples a process's resident set size on a thread; `.peak` in bytes."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _server_timing(response: httpx.Response) -> dict[str, float]:
    """Server-Timing as {name: ms}: each stage of the search, and `total` for all of it."""
    out: dict[str, float] = {}
    for metric in response.headers.get("server-timing", "").split(","):
        name, _, params = metric.strip().partition(";")
        if params.startswith("dur="):
            out[name] = float(params[4:])
    return out


def run_level(
    base: str, key: str, clients: int, total: int, request: Callable[[httpx.Client], httpx.Response]
) -> tuple[list[Sample], float]:
    """`total` searches spread over `clients` threads, each with its own connection."""
    per_client = max(1, total // clients)

    def worker(_: int) -> list[Sample]:
        out: list[Sample] = []
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            for _ in range(per_client):
                started = time.perf_counter()
                response = request(client)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise SystemExit(f"search failed: {response.status_code} {response.text}")
                timing = _server_timing(response)
                total = timing.pop("total", None)
                out.append(Sample(elapsed, total, timing))
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        samples = [s for chunk in pool.map(worker, range(clients)) for s in chunk]
    return samples, time.perf_counter() - started


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _report(kind: str, clients: int, samples: list[Sample], wall: float, rss: int) -> None:
    ms = [s.seconds * 1000 for s in samples]
    server = [s.server_ms for s in samples if s.server_ms is not None]
    server_p50 = f"{statistics.median(server):.1f}" if server else "-"
    print(
        f"| {kind} | {clients} | {len(samples)} | {len(samples) / wall:.1f} | "
        f"{_pct(ms, 50):.1f} | {_pct(ms, 95):.1f} | {_pct(ms, 99):.1f} | {server_p50} | "
        f"{rss / 2**20:.0f} |",
        flush=True,
    )
    stages = samples[0].stages.keys() if samples else []
    shown = ", ".join(f"{k} {statistics.median(s.stages[k] for s in samples):.1f}" for k in stages)
    if shown:
        print(f"|   server stage p50 ms: {shown} |", flush=True)


def _ingest(env: dict[str, str], data: Path) -> str:
    """Two cameras' worth of the sample video, and an operator key to search with."""
    print("ingesting the sample video twice (real models)...", file=sys.stderr, flush=True)
    for camera in ("lobby", "hall"):
        _cli(env, "ingest", str(data / LOBBY), "--camera", camera, "--json")
    created = json.loads(
        _cli(env, "keys", "create", "--role", "operator", "--name", "bench", "--json")
    )
    return str(created["key"])


def _example(client: httpx.Client) -> tuple[int, bytes]:
    """The clearest stored person (highest detector confidence) and its crop, via the API."""
    frames = client.get("/api/v1/cameras/lobby/keyframes", params={"limit": 500}).json()
    people = [
        appearance
        for frame in frames["keyframes"]
        if frame["appearances"]
        for appearance in client.get(f"/api/v1/keyframes/{frame['id']}").json()["appearances"]
        if appearance["label"] == "person"
    ]
    if not people:
        raise SystemExit("the sample video yielded no person appearance")
    best = max(people, key=lambda a: a["confidence"])
    crop = client.get(best["crop_url"])
    crop.raise_for_status()
    return int(best["id"]), crop.content


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "data",
        help="the shared data folder (default: ../shared/data)",
    )
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server (a database is made)")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels, comma-separated")
    parser.add_argument("--requests", type=int, default=160, help="searches per level and kind")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    with (
        tempfile.TemporaryDirectory(prefix="surveil-bench-api-") as tmp,
        database(args.backend, args.pg) as url,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEIL_")}
        models = args.data / "models"
        env.update(
            SURVEIL_STORAGE__ROOT=str(Path(tmp) / "data"),
            SURVEIL_DATABASE__URL=url,
            SURVEIL_MODEL_DIR=str(models),
            SURVEIL_DETECTOR__WEIGHTS=str(models / "yolov8n_int8_dynamic.onnx"),
            SURVEIL_LOGGING__LEVEL="WARNING",
            SURVEIL_API__CONSOLE="false",  # the API alone is measured
        )
        key = _ingest(env, args.data)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with served(env, port, Path(tmp) / "serve.log") as server:
            auth = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
                appearance_id, crop = _example(client)
                stored = client.get("/metrics").text
            vectors = [
                line for line in stored.splitlines() if line.startswith("surveil_index_vectors")
            ]
            print(f"catalog: {', '.join(vectors)}; crop {len(crop)} bytes", flush=True)
            kinds: dict[str, Callable[[httpx.Client], httpx.Response]] = {
                "upload": lambda c: c.post(
                    "/api/v1/search", files={"image": ("crop.jpg", crop, "image/jpeg")}
                ),
                # The label picks the space, so the detector does not run on the crop.
                "upload, label=person": lambda c: c.post(
                    "/api/v1/search",
                    files={"image": ("crop.jpg", crop, "image/jpeg")},
                    data={"label": "person"},
                ),
                "appearance": lambda c: c.post(
                    "/api/v1/search", data={"appearance_id": str(appearance_id)}
                ),
            }
            idle = psutil.Process(server.pid).memory_info().rss
            print(f"server RSS after start-up: {idle / 2**20:.0f} MiB", flush=True)
            print(
                "| query | clients | requests | req/s | p50 ms | p95 ms | p99 ms "
                "| server p50 ms | peak RSS MiB |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for kind, request in kinds.items():
                run_level(base, key, 1, 5, request)  # warm-up: models loaded, pages cached
                with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
                    found = request(client).json()["sightings"]
                hits = sum(len(s["appearances"]) for s in found)
                print(f"{kind}: {len(found)} sightings, {hits} appearances per search", flush=True)
                for clients in levels:
                    with PeakRss(server.pid) as rss:
                        samples, wall = run_level(base, key, clients, args.requests, request)
                    _report(kind, clients, samples, wall, rss.peak)


if __name__ == "__main__":
    main()
