#!/usr/bin/env bash
# One command to serve the bundled example: installs what is missing, builds, and runs
# `lodestar serve` on 127.0.0.1:5300 and [::1]:5300 with zones/ (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release
exec .build/release/lodestar serve "$@"
