#!/usr/bin/env bash
# Builds and runs every test twice: a release build, then an ASan+UBSan build; then the fuzzers.
# Usage: scripts/run_tests.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

run_suite() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

echo "== clang-format check"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

echo "== release build and tests"
run_suite build -DCMAKE_BUILD_TYPE=Release
if [[ "${1:-}" != "--no-sanitize" ]]; then
  echo "== ASan+UBSan build and tests"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMLA_SANITIZE=ON -DMLA_BUILD_BENCH=OFF
fi
if [[ "${1:-}" != "--no-sanitize" ]]; then
  echo "== fuzzers (parsers of untrusted files), 30 s each"
  ./scripts/run_fuzzers.sh 30
fi
echo "all test suites passed"
