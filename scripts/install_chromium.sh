#!/usr/bin/env bash
# Install Debian's Chromium for the browser test of the rendered book (make test runs this).
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" -eq 0 ]; then run=(); elif command -v sudo >/dev/null; then run=(sudo); else
  echo "install_chromium: Debian's chromium package is needed for the browser test;" \
       "install it as root (apt-get install chromium)" >&2
  exit 1
fi
"${run[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
