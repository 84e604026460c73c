#!/usr/bin/env bash
# Runs the side-by-side benchmark: lodestar, knot, NSD and gdnsd on the same zones, driven by
# dnsperf, all on loopback. Installs the peers from Debian's packages, builds lodestar (release),
# and prints the tables that bench/README.md records. Takes ~20 minutes with the defaults.
#   bench/run.sh [--runs N] [--seconds S] [--big N] [--only lodestar,knot,...] [--skip start,udp,tcp,udp-rate,load,gslb,gslb-ecs,gslb-ecs-many,gslb-many,pdns]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
# Built as the package ships it (the Swift runtime linked in: start-up and memory depend on it), in
# a folder of its own so that the test suite's and package.sh's builds stay as they are.
swift build -c release --static-swift-stdlib --product lodestar --scratch-path .build/static
work=$(mktemp -d /tmp/lodestar-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/bench.py "$work" .build/static/release/lodestar "$@"
