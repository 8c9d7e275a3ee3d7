#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the console's browser test (Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own). Exits non-zero
# with a message when it cannot be had, so CI never silently skips the browser test.
set -euo pipefail

CHROMIUM=${SURVEIL_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  echo "ensure-chromium: $CHROMIUM present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: $CHROMIUM missing and cannot install it (need root and apt-get);" \
       "install Debian's chromium package or set SURVEIL_CHROMIUM" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
}
"$CHROMIUM" --version
