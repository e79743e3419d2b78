#!/usr/bin/env bash
# Builds a `runwarden` that runs on a Linux host without Swift: the Swift runtime and
# Foundation linked in (`--static-swift-stdlib`); it needs only the C library and libsqlite3.
#
#   deploy/build-release.sh [OUTPUT_DIR]          (default ./dist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
scratch=${SCRATCH:-.build-release-static}
swift build -c release --static-swift-stdlib --product runwarden --scratch-path "$scratch"
mkdir -p "$out"
install -m 0755 "$scratch/release/runwarden" "$out/runwarden"
install -m 0644 deploy/*.service deploy/*.env.example "$out/"
"$out/runwarden" --version
echo "built $out/runwarden — shared libraries it still needs:"
ldd "$out/runwarden" | sed 's/^/  /'
