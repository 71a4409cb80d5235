#!/usr/bin/env bash
# Render reports/durability.html in headless Chromium and save a screenshot to look at.
# Usage: scripts/screenshot-report.sh [OUT.png]   (installs Debian's chromium when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/durability.png}
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
mkdir -p "$(dirname "$out")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1200,1800 \
  --screenshot="$out" "file://$PWD/reports/durability.html" 2>/dev/null
test -s "$out"
echo "wrote $out"
