"""Serve one test stream on loopback until killed: the child process behind tests/streams.py.

The live-ingest tests need cameras that are real network servers (so that OpenCV's FFmpeg
reader goes through its real protocol code, timeouts and reconnects) and that a test can
kill like a crashed camera. Two modes, because the two servers need different Pythons:

- ``http``: run by the venv's Python (stdlib only). ``ffmpeg -listen 1`` serves exactly
  one HTTP client and exits when it leaves, so this supervisor relaunches it at once: a
  reader that reconnects finds the stream again, as it would find a camera.
- ``rtsp``: run by Debian's /usr/bin/python3, which owns GStreamer's Python bindings
  (python3-gi; the venv cannot import them). GstRtspServer, a real RTSP server, serves
  ``rtsp://HOST:PORT/MOUNT``. The H.264 access units are demuxed from the file (no
  re-encoding: two cores must be left to the models under test) and pushed into the
  served pipeline with timestamps that keep increasing across loops, so the file plays
  forever at its native rate, paced by GStreamer's clock.
- ``check``: exit 0 when everything the ``rtsp`` mode needs is importable (used by
  tests/streams.py and mirrored by scripts/ensure-streaming.sh).

Both serving modes exit when their stdin reaches end-of-file: the parent holds the pipe's
only write end, so a test run that dies, even by SIGKILL, leaves no server behind.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

RTSP_ELEMENTS = ("appsrc", "appsink", "filesrc", "qtdemux", "h264parse", "rtph264pay")


def _exit_when_parent_goes(on_exit: Any = None) -> None:
    """Exit the process once stdin is closed, i.e. once the test process is gone."""

    def watch() -> None:
        while os.read(0, 4096):
            pass
        if on_exit is not None:
            on_exit()
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# --- http: a supervised `ffmpeg -listen 1` -------------------------------------------


def serve_http(video: Path, host: str, port: int, path: str, loop: bool) -> None:
    """Relaunch ffmpeg every time its single client leaves, until this process is killed.

    ``-re`` paces reading at the file's native rate (a camera does not deliver faster than
    real time); ``-c copy`` keeps it cheap. ffmpeg blocks in accept() before it reads
    the input, so each client starts at the top of the file, with a keyframe.
    """
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re"]
    if loop:
        argv += ["-stream_loop", "-1"]
    argv += ["-i", str(video), "-map", "0:v:0", "-c", "copy", "-f", "mpegts"]
    argv += ["-listen", "1", f"http://{host}:{port}{path}"]
    lock = threading.Lock()  # no launch may slip in between the kill and the exit
    current: list[subprocess.Popen[bytes]] = []

    def kill_current() -> None:
        lock.acquire()  # held until os._exit
        for proc in current:
            proc.kill()
            proc.wait()  # reaped here: PID 1 in a container may never reap it

    _exit_when_parent_goes(kill_current)
    while True:
        started = time.monotonic()
        with lock:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
            current[:] = [proc]
        proc.wait()
        # A client that left is the normal case; a launch that fails at once (bad file,
        # port taken) must not spin the CPU the tests measure.
        if time.monotonic() - started < 0.5:
            time.sleep(0.5)


# --- rtsp: GStreamer's RTSP server ---------------------------------------------------


def _gst() -> tuple[Any, Any, Any]:
    import gi  # type: ignore[import-not-found, import-untyped, unused-ignore]

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        GLib,
        Gst,
        GstRtspServer,
    )

    Gst.init(None)
    return GLib, Gst, GstRtspServer


class FileFeeder:
    """Feeds one served pipeline's appsrc with the file's H.264 access units, looping.

    A second pipeline demuxes the file into an appsink; every access unit is pushed on
    with its PTS/DTS shifted by the length of the loops already played, so timestamps
    never go back and the served pipeline's sinks (which sync to the clock) send it at
    the native rate. Restarting the reader at end of file is what a flushing seek would
    do, without resetting the served pipeline's running time.
    """

    def __init__(self, gst: Any, video: Path, loop: bool) -> None:
        self.gst = gst
        self.loop = loop
        self.offset = 0  # added to this loop's timestamps
        self.first: int | None = None  # earliest PTS of this loop
        self.end = 0  # latest PTS + duration of this loop
        self.caps_set = False
        self.reader = gst.parse_launch(
            "filesrc name=file ! qtdemux name=demux "
            "h264parse name=parse ! video/x-h264,stream-format=byte-stream,alignment=au ! "
            "appsink name=sink sync=false max-buffers=16"
        )
        self.reader.get_by_name("file").set_property("location", str(video))
        # Linked by hand on every pad-added: gst-launch's delayed link is one-shot, and
        # qtdemux makes a new pad each time the reader restarts for the next loop.
        self.parse_sink = self.reader.get_by_name("parse").get_static_pad("sink")
        self.reader.get_by_name("demux").connect("pad-added", self._link_video)
        self.sink = self.reader.get_by_name("sink")
        self.reader.set_state(gst.State.PLAYING)

    def feed(self, appsrc: Any) -> None:
        """Push into `appsrc` whenever it asks for data."""
        appsrc.connect("need-data", self.need_data)

    def _link_video(self, _demux: Any, pad: Any) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        if caps.get_structure(0).get_name() == "video/x-h264" and not self.parse_sink.is_linked():
            pad.link(self.parse_sink)

    def pull_one(self) -> Any:
        """The next access unit; None at end of file or when the reader failed."""
        gst = self.gst
        for _ in range(40):  # 10 s for a slow disk, but an unreadable file fails at once
            sample = self.sink.emit("try-pull-sample", gst.SECOND // 4)
            if sample is not None or self.sink.get_property("eos"):
                return sample
            message = self.reader.get_bus().pop_filtered(gst.MessageType.ERROR)
            if message is not None:
                error, debug = message.parse_error()
                print(f"rtsp_serve: reading failed: {error.message} ({debug})", file=sys.stderr)
                return None
        print("rtsp_serve: reading stalled", file=sys.stderr)
        return None

    def _pull(self) -> Any:
        sample = self.pull_one()
        if sample is not None or not self.loop or not self.sink.get_property("eos"):
            return sample
        # The next loop starts one frame after this one's last frame is shown.
        self.offset += self.end - (self.first or 0)
        self.first, self.end = None, 0
        self.reader.set_state(self.gst.State.NULL)
        self.reader.set_state(self.gst.State.PLAYING)
        return self.pull_one()

    def need_data(self, appsrc: Any, _length: int) -> None:
        try:
            self._push_one(appsrc)
        except Exception:
            # An exception in a GStreamer callback would only be printed, and every
            # client would hang; ending the stream makes the failure visible to them.
            traceback.print_exc()
            appsrc.emit("end-of-stream")

    def _push_one(self, appsrc: Any) -> None:
        gst = self.gst
        sample = self._pull()
        if sample is None:
            appsrc.emit("end-of-stream")
            return
        if not self.caps_set:
            appsrc.set_property("caps", sample.get_caps())
            self.caps_set = True
        source = sample.get_buffer()
        flags = gst.BufferCopyFlags
        everything = flags.FLAGS | flags.TIMESTAMPS | flags.META | flags.MEMORY
        buf = source.copy_region(everything, 0, source.get_size())
        none = gst.CLOCK_TIME_NONE
        if source.pts != none:
            buf.pts = source.pts + self.offset
            duration = source.duration if source.duration != none else 0
            self.first = source.pts if self.first is None else min(self.first, source.pts)
            self.end = max(self.end, source.pts + duration)
        if source.dts != none:
            buf.dts = source.dts + self.offset
        appsrc.emit("push-buffer", buf)

    def stop(self) -> None:
        self.reader.set_state(self.gst.State.NULL)


def serve_rtsp(video: Path, host: str, port: int, path: str, loop: bool, shared: bool) -> None:
    """Run GstRtspServer until killed; one feeder per media (one in all when shared).

    Shared media is how a camera behaves: every client sees the same timeline, and a
    client that joins late waits for the next keyframe. Unshared media gives each client
    its own playback from the top of the file (useful for files with rare keyframes).
    """
    glib, gst, rtsp = _gst()
    feeders: dict[int, FileFeeder] = {}

    def configure(_factory: Any, media: Any) -> None:
        feeder = FileFeeder(gst, video, loop)
        feeder.feed(media.get_element().get_by_name("src"))
        feeders[id(media)] = feeder

        def unprepared(_media: Any) -> None:
            gone = feeders.pop(id(media), None)
            if gone is not None:
                gone.stop()

        media.connect("unprepared", unprepared)

    # Fail at start-up, where tests/streams.py reports it, not at a client's DESCRIBE.
    probe = FileFeeder(gst, video, loop=False)
    readable = probe.pull_one() is not None
    probe.stop()
    if not readable:
        sys.exit(f"rtsp_serve: no H.264 video readable from {video} (MP4/MOV with H.264)")

    server = rtsp.RTSPServer()
    server.set_address(host)
    server.set_service(str(port))
    factory = rtsp.RTSPMediaFactory()
    factory.set_launch(
        "( appsrc name=src format=time ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(shared)
    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_serve: cannot listen on {host}:{port}")
    main_loop = glib.MainLoop()
    _exit_when_parent_goes()
    print(f"serving rtsp://{host}:{port}{path}", flush=True)
    main_loop.run()


def check_rtsp() -> int:
    """0 when GStreamer's RTSP server and the elements the rtsp mode uses are importable."""
    try:
        _glib, gst, _rtsp = _gst()
    except (ImportError, ValueError) as exc:
        print(f"GStreamer RTSP server bindings unusable: {exc}", file=sys.stderr)
        return 1
    missing = [name for name in RTSP_ELEMENTS if gst.ElementFactory.find(name) is None]
    if missing:
        print(f"GStreamer elements missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", choices=["http", "rtsp", "check"])
    parser.add_argument("--video", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", default="/live")
    parser.add_argument("--no-loop", dest="loop", action="store_false")
    parser.add_argument("--unshared", dest="shared", action="store_false")
    args = parser.parse_args(argv)
    if args.mode == "check":
        return check_rtsp()
    if args.video is None or not args.port:
        parser.error("--video and --port are required to serve")
    if not args.video.is_file():
        parser.error(f"no such video: {args.video}")
    if args.mode == "http":
        serve_http(args.video, args.host, args.port, args.path, args.loop)
    else:
        serve_rtsp(args.video, args.host, args.port, args.path, args.loop, args.shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
