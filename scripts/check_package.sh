#!/usr/bin/env bash
# Checks mla.cpp as a package, from a finished build folder (default: build):
#   1. `cmake --install` into a temporary prefix, then examples/embed, a project outside the tree,
#      is configured with find_package(mla), built and run against it (it checks its own output);
#   2. the library alone configures with none of the front ends' dependencies: CLI11, cairo
#      (pkg-config), GoogleTest, Google Benchmark, Python and pybind11 are all disabled, so any
#      find_package of them would fail the configure.
# Usage: scripts/check_package.sh [build folder]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S examples/embed -B "$work/embed" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/embed" >/dev/null
"$work/embed/embed"

disabled=()
for pkg in CLI11 PkgConfig GTest benchmark Python3 pybind11; do
  disabled+=("-DCMAKE_DISABLE_FIND_PACKAGE_$pkg=ON")
done
cmake -S . -B "$work/library-only" -G Ninja -DMLA_BUILD_TESTS=OFF -DMLA_BUILD_BENCH=OFF \
  -DMLA_BUILD_PYTHON=OFF -DMLA_BUILD_CLI=OFF --no-warn-unused-cli "${disabled[@]}" >/dev/null
echo "check_package: installed package builds and runs examples/embed; library-only configure works"
