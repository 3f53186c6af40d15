#!/usr/bin/env bash
# The dashboard's browser test drives Debian's Chromium (never a browser build downloaded by a test
# tool). Installed here on first `npm test` when it is missing, so that the README's test command works
# on a fresh machine.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the dashboard's browser test (once) …"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "The dashboard's browser test needs Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2
  exit 1
fi
