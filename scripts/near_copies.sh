#!/usr/bin/env bash
# The near-copy count of issue 9: pairs of six or more alike lines over the hand-written code of
# services/ and libs/ (the generated contracts in libs/api left out), as the `duplicates` tool
# counts them. Usage: scripts/near_copies.sh [--most N]   (prints the tool's report)
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
git ls-files -co --exclude-standard services libs | grep -v '^libs/api/' | while read -r f; do
  [ -f "$f" ] || continue
  mkdir -p "$tree/$(dirname "$f")" && cp "$f" "$tree/$f"
done
[ $# -gt 0 ] || set -- --most 200
duplicates --repo "$tree" --seconds 300 "$@"
