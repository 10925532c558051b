#!/usr/bin/env bash
# Installs the Debian packages mla.cpp needs; skips what is already present (idempotent).
set -euo pipefail
packages=(
  build-essential cmake ninja-build clang clang-format libclang-rt-14-dev
  libomp-14-dev  # LLVM's OpenMP and its Archer tool: the TSan build (GCC's libgomp is not TSan-aware)
  libdnnl-dev ocl-icd-opencl-dev libomp-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev  # mla serve: HTTP server (Debian-packaged cpp-httplib)
  python3-requests chromium python3-websocket  # the server tests: HTTP client, headless browser for the chat page
  pybind11-dev python3-dev python3-numpy python3-pytest python3-torch
  libpcre2-dev  # the tokenizer's pre-tokenizer regexes (Unicode classes, JIT)
  libcairo2-dev fonts-dejavu-core pkg-config  # `mla bench --plot` and `mla train --plot` draw with cairo and DejaVu Sans
  python3-pil  # bench/train_compare.py draws its plot with PIL
  python3-jinja2  # tests/text: chat templates compared with the reference Jinja engine
  python3-pip python3-setuptools python3-wheel python3-venv  # pip install . (setup.py) and its venv test
  libopenblas0-pthread  # the PyTorch peer's BLAS in bench/: Debian's default reference BLAS would make it look 50x slower
)
# npm (with node): the tokenizer tests install their reference implementations from the npm
# registry. Checked by command: a node from another source already brings npm.
command -v npm >/dev/null 2>&1 || packages+=(npm)
# ocl-icd-opencl-dev: oneDNN's CMake package config asks for OpenCL (its GPU runtime) even for CPU use.
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
