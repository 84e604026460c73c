#!/usr/bin/env bash
# One command for the whole test suite: installs what the tests need, builds, runs every test
# (unit, integration against the real binary with dig, the differential comparison with knot).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The formatter's rules (.swift-format, swift-format from the Swift toolchain): any deviation fails
# the run before anything is built.
swift format lint --strict --recursive Sources Tests Fuzz Package.swift
swift build --build-tests
# The man page generator the package test uses (scripts/package.sh), built now: SwiftPM locks .build
# while `swift test` runs.
swift build --product generate-manual
log=$(mktemp)
set +e
# One test at a time: in parallel, swift-testing runs every test on a cooperative pool as wide as
# the machine has cores (2 here), and the integration tests that block (the knot comparison, BIRD)
# held both threads until tests that had started ran past their time limits. Serial: ~5.5 min.
swift test --skip-build --no-parallel 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Then every fuzzing harness under libFuzzer for 20 s over its corpus (FUZZING.md); a finding fails
# the run. The instrumented build (its own .build/fuzz) takes about 2.5 min on 2 cores.
scripts/fuzz.sh 20
fuzz=$?
set -e
summary=$(grep -E '^. Test run with [0-9]+ tests?' "$log" | tail -1 || true)
rm -f "$log"
if [[ $status -eq 0 && $fuzz -eq 0 && $summary == *passed* ]]; then
  n=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$summary")
  echo "$n passed, 0 failed (and 9 fuzzing harnesses, 20 s each, no finding)"
fi
[[ $status -ne 0 ]] && exit "$status"
exit "$fuzz"
