#!/usr/bin/env bash
# Runs the side-by-side benchmark: lodestar, knot, NSD and gdnsd on the same zones, driven by
# dnsperf, all on loopback. Installs the peers from Debian's packages, builds lodestar (release),
# and prints the tables that bench/README.md records. Takes ~15 minutes with the defaults.
#   bench/run.sh [--runs N] [--seconds S] [--big N] [--only lodestar,knot,...] [--skip udp,tcp,udp-rate,load,gslb,gslb-ecs,gslb-ecs-many,gslb-many,pdns]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
swift build -c release
work=$(mktemp -d /tmp/lodestar-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/bench.py "$work" .build/release/lodestar "$@"
