"""put_many throughput of real crop JPEGs: local files versus an S3 server (moto).

Crops are cut from frames of a real sample video (128x256, JPEG quality 90, as ingest
stores person thumbnails) and written in batches the size of an ingest batch. The S3
side is a moto server process on loopback started here (or --endpoint for a real store,
with credentials in the AWS environment variables). moto is a Python server on the same
two cores, so its figure is a floor for the client's cost, not what MinIO or AWS give.

Example:
    .venv/bin/python benchmarks/bench_blobs.py --crops 640 --batch 64
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from surveil.config import S3Settings
from surveil.ports import BlobStore
from surveil.storage.blobs import FileBlobStore, FlockClaims
from surveil.storage.blobs.s3 import S3BlobStore

VIDEO = Path(__file__).resolve().parents[2] / "shared/data/videos/ua_detrac_evadb/ua_detrac.mp4"


def crops(n: int) -> list[bytes]:
    """`n` JPEG crops cut from the video's frames, different bytes each."""
    cap = cv2.VideoCapture(str(VIDEO))
    out: list[bytes] = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        h, w = frame.shape[:2]
        for y in range(0, h - 256, 128):
            for x in range(0, w - 128, 96):
                patch = frame[y : y + 256, x : x + 128]
                ok, enc = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, 90])
                out.append(np.asarray(enc).tobytes())
    cap.release()
    return out[:n]


def measure(store: BlobStore, data: Sequence[bytes], batch: int) -> tuple[float, float]:
    """Seconds to put every crop in batches, and MB written."""
    items = [(f"crops/bench/{i // batch}/{i:06d}.jpg", d) for i, d in enumerate(data)]
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        store.put_many(items[start : start + batch])
    return time.perf_counter() - started, sum(map(len, data)) / 1e6


@contextmanager
def moto() -> Iterator[str]:
    """A moto S3 server on a free loopback port, killed afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe) if exe.exists() else "moto_server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crops", type=int, default=640)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=8, help="storage.s3.upload_threads")
    parser.add_argument("--endpoint", help="An S3 endpoint instead of a local moto server.")
    args = parser.parse_args()
    data = crops(args.crops)
    root = Path(tempfile.mkdtemp(prefix="bench-blobs-"))
    try:
        local = FileBlobStore(root)
        seconds, mb = measure(local, data, args.batch)
        print(f"local files: {len(data) / seconds:8.0f} crops/s {mb / seconds:6.1f} MB/s")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        with _endpoint(args.endpoint) as url:
            settings = S3Settings(
                endpoint_url=url,
                bucket=f"bench-{uuid.uuid4().hex[:8]}",
                addressing_style="path",
                create_bucket=True,
                upload_threads=args.threads,
            )
            s3 = S3BlobStore(settings, FlockClaims(root / ".claims"))
            s3.check()
            seconds, mb = measure(s3, data, args.batch)
            s3.close()
            print(f"s3 ({url}): {len(data) / seconds:8.0f} crops/s {mb / seconds:6.1f} MB/s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _endpoint(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with moto() as started:
        yield started


if __name__ == "__main__":
    main()
