#!/usr/bin/env bash
# Builds and runs every test: a release build, an ASan+UBSan build, a TSan build of the threaded
# kernels and cache tests, then the fuzzers. Prints how long each stage took (CI budget: 90 min
# on 2 cores for install, all stages included).
# Usage: scripts/run_tests.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
stage_start=$SECONDS
stage_name=""

stage() {
  [[ -n $stage_name ]] && echo "== $stage_name: $((SECONDS - stage_start)) s"
  stage_name=$1
  stage_start=$SECONDS
  echo "== $stage_name"
}

# Configures with a preset of CMakePresets.json (release, asan, tsan, fuzz), builds, runs ctest.
run_suite() {
  local preset=$1 dir=$2
  cmake --preset "$preset" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

stage "clang-format check"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

stage "release build and tests"
run_suite release build
stage "package: install, examples/embed against it, library-only configure"
./scripts/check_package.sh build
if [[ "${1:-}" != "--no-sanitize" ]]; then
  stage "ASan+UBSan build and tests"
  (
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0
    run_suite asan build-asan
  )
  # clang + LLVM's libomp; only the threaded kernels, the layer and the page pool (tests/CMakeLists.txt).
  stage "TSan build and tests (threaded kernels, cache)"
  cmake --preset tsan >/dev/null
  cmake --build build-tsan --target mla_tsan_tests -j "$jobs"
  ctest --test-dir build-tsan --output-on-failure
  stage "fuzzers (parsers of untrusted files), 30 s each"
  ./scripts/run_fuzzers.sh 30
fi
stage "done"
echo "all test suites passed"
