"""Decode (and keyframe-selection) throughput of recorded sources, in frames per second.

    .venv/bin/python benchmarks/bench_decode.py ../shared/data/videos/ua_detrac_evadb/ua_detrac.mp4

Decoding is the first hot path of ingest; this prints what one camera's reader sustains
inline, with decode-ahead, and with keyframe selection in the loop.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from surveil.config import KeyframeSettings, LoggingSettings
from surveil.domain import Frame
from surveil.ingest.keyframes import KeyframeSelector
from surveil.ingest.sources import open_source
from surveil.logs import configure_logging


def measure(path: str, *, decode_ahead: int, work: Callable[[Frame], object] | None) -> float:
    """Frames per second over the whole source, opening included."""
    began = time.perf_counter()
    source = open_source(path, camera_id="bench", decode_ahead=decode_ahead)
    frames = 0
    try:
        for frame in source.frames():
            if work is not None:
                work(frame)
            frames += 1
    finally:
        source.close()
    return frames / (time.perf_counter() - began)


def main() -> None:
    """Print one line per source and mode."""
    configure_logging(LoggingSettings(level="WARNING"))  # figures on stdout, no chatter
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="video files, image patterns or directories")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the best is shown")
    parser.add_argument("--decode-ahead", type=int, default=4, help="queue size for the thread")
    args = parser.parse_args()

    def no_work() -> None:
        return None

    def select() -> Callable[[Frame], object]:
        # A fresh selector per run so every run starts from "first".
        return KeyframeSelector(KeyframeSettings()).consider

    modes: list[tuple[str, int, Callable[[], Callable[[Frame], object] | None]]] = [
        ("decode", 0, no_work),
        (f"decode-ahead={args.decode_ahead}", args.decode_ahead, no_work),
        ("decode+select", 0, select),
        (f"decode-ahead={args.decode_ahead}+select", args.decode_ahead, select),
    ]
    for path in args.paths:
        for name, ahead, make_work in modes:
            best = max(
                measure(path, decode_ahead=ahead, work=make_work()) for _ in range(args.repeat)
            )
            print(f"{path}\t{name}\t{best:8.1f} frames/s")


if __name__ == "__main__":
    main()
