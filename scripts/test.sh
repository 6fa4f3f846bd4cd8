#!/usr/bin/env bash
# From a fresh machine: install dependencies, fetch the default model, build, run all tests,
# then check that the portable (baseline x86-64) build compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
# The portable build (no -march=native, as for other x86-64 CPUs and on the GPU machine) must
# compile too: the tests above ran on the native build (host_probe.cpp once broke only here).
cmake -S . -B build-portable -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRUGAL_NATIVE=OFF \
  -DFRUGAL_CUDA=OFF -DFRUGAL_BUILD_TESTS=OFF > /dev/null
cmake --build build-portable --target frugal -j"$(nproc)"
