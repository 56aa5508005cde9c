#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download does not work offline). Installs it when missing and we may; otherwise says how.
set -euo pipefail
CHROMIUM="${TANDEM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing Debian's chromium for the browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-dejavu-core >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -q chromium fonts-dejavu-core >/dev/null; }
  [ -x "$CHROMIUM" ] && exit 0
fi
printf '\033[1;31m[setup] error:\033[0m %s\n' "The browser tests need Chromium at $CHROMIUM. Install it with 'sudo apt-get install chromium' (Debian/Ubuntu), or set TANDEM_CHROMIUM=/path/to/chromium." >&2
exit 1
