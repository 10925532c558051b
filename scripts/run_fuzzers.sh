#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a fixed budget,
# first replaying every past crash in fuzz/regressions/. Fails on any crash.
# Usage: scripts/run_fuzzers.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
cmake --preset fuzz >/dev/null  # CMakePresets.json: clang, MLA_BUILD_FUZZERS=ON
cmake --build build-fuzz --target fuzzers
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in safetensors config index checkpoint tokenizer_json tokenize chat_template; do
  echo "== fuzz_$target: regressions, then ${seconds}s"
  if ls fuzz/regressions/$target/* >/dev/null 2>&1; then
    ./build-fuzz/fuzz/fuzz_$target fuzz/regressions/$target/* 2>&1 | tail -n 1
  fi
  mkdir -p "$work/$target"
  cp fuzz/corpus/$target/* "$work/$target/"
  # Checkpoint seeds are real training checkpoints of 20-35 KB (fuzz/make_checkpoint_corpus.sh).
  max_len=8192
  [[ $target == checkpoint ]] && max_len=65536
  # New inputs go to a scratch corpus; crashes land in $work and fail the run.
  ./build-fuzz/fuzz/fuzz_$target "$work/$target" fuzz/corpus/$target -max_total_time="$seconds" \
    -max_len=$max_len -artifact_prefix="$work/crash-$target-" -print_final_stats=1 2>&1 |
    grep -E "stat::number_of_executed_units|Done|ERROR|SUMMARY" || true
  if ls "$work"/crash-$target-* >/dev/null 2>&1; then
    echo "fuzz_$target found a crash: $(ls "$work"/crash-$target-*)" >&2
    mkdir -p fuzz/found && cp "$work"/crash-$target-* fuzz/found/
    exit 1
  fi
done
echo "fuzzers: no crash"
