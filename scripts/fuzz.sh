#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (FUZZING.md): builds the harnesses with
# `--sanitize=fuzzer --sanitize=address` into .build/fuzz, then runs each for SECONDS over its
# committed seed corpus (Fuzz/Corpus/TARGET) and a working corpus (.build/fuzz/corpus/TARGET).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default: 600 s each; query name zone config admin bird etcd mmdb include
#
# A finding stops that target, is saved in .build/fuzz/artifacts/TARGET/ and makes the script
# exit 1; replay it with `LODESTAR_FUZZ_TARGET=TARGET .build/fuzz/debug/lodestar-fuzz FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=${*:-query name zone config admin bird etcd mmdb include}
swift build --scratch-path .build/fuzz --product lodestar-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
bin=.build/fuzz/debug/lodestar-fuzz
status=0
for t in $targets; do
  mkdir -p ".build/fuzz/corpus/$t" ".build/fuzz/artifacts/$t"
  echo "== $t: ${seconds} s"
  # -rss_limit_mb: the harnesses load the bundled example (zones, steering, the sample database).
  if ! LODESTAR_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no "$bin" ".build/fuzz/corpus/$t" "Fuzz/Corpus/$t" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix=".build/fuzz/artifacts/$t/" > ".build/fuzz/$t.log" 2>&1; then
    status=1
    echo "   FINDING: see .build/fuzz/$t.log and .build/fuzz/artifacts/$t/"
    grep -E "ERROR|Fatal error|panic|SUMMARY" ".build/fuzz/$t.log" | head -5 || true
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" ".build/fuzz/$t.log" | tr '\n' ' ' || true
  echo
  grep -E "^#[0-9]+ +(DONE|pulse|NEW|REDUCE)" ".build/fuzz/$t.log" | tail -1 || true
done
exit $status
