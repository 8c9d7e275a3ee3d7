#!/usr/bin/env bash
# Make sure the live-camera tests can serve real streams on loopback: Debian's ffmpeg (the
# HTTP MPEG-TS server, `-listen 1`) and GStreamer's RTSP server with the plugins that
# demux and packetise the shared H.264 videos (qtdemux, h264parse, rtph264pay). The RTSP
# server runs under Debian's /usr/bin/python3, which owns the GObject bindings (python3-gi);
# the project's venv never imports them. Exits non-zero with a message when they cannot
# be had, so CI never silently skips the stream tests.
set -euo pipefail

SYSTEM_PYTHON=/usr/bin/python3
# No decoder is needed (the video is demuxed and re-packetised, never re-encoded), so
# neither -ugly nor gstreamer1.0-libav.
PACKAGES=(
  ffmpeg
  python3-gi
  gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-rtsp
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
)

# The check tests/streams.py makes before it serves RTSP: the bindings import and the
# elements it uses exist (appsrc, appsink, filesrc, qtdemux, h264parse, rtph264pay).
gst_ok() { "$SYSTEM_PYTHON" "$(dirname "$0")/../tests/stream_serve.py" check 2>/dev/null; }

present() { command -v ffmpeg >/dev/null && [ -x "$SYSTEM_PYTHON" ] && gst_ok; }

if present; then
  echo "ensure-streaming: ffmpeg and GStreamer's RTSP server present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-streaming: ffmpeg or GStreamer's RTSP server (for $SYSTEM_PYTHON) missing and" \
       "cannot install them (need root and apt-get); install Debian's ${PACKAGES[*]}" >&2
  exit 1
fi
echo "ensure-streaming: installing Debian's ${PACKAGES[*]}"
export DEBIAN_FRONTEND=noninteractive
# Without recommends, on the project's Debian 12 image: about 150 packages, 77 MB to
# download, 225 MB installed, one to two minutes.
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}
if ! present; then
  echo "ensure-streaming: installed ${PACKAGES[*]} but ffmpeg or the GStreamer RTSP" \
       "elements are still not usable from $SYSTEM_PYTHON" >&2
  exit 1
fi
ffmpeg -hide_banner -version | sed -n 1p
echo "ensure-streaming: GStreamer RTSP server ready for $SYSTEM_PYTHON"
