#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite through CTest:
#   1. a RelWithDebInfo build with -Werror: every test;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build: every test;
#   3. a ThreadSanitizer build: the thread-level tests (label "thread");
#   4. a clang libFuzzer build: each fuzz target briefly from its seeds, and
#      its regression inputs (label "fuzz", docs/fuzzing.md).
# Set IPC_TEST_QUICK=1 to run only step 1.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

jobs=$(nproc)
status=0

run_tree() {  # dir label-filter cmake-args...
  local dir=$1 filter=$2
  shift 2
  echo "== $dir: configure and build"
  cmake -S . -B "$dir" -G Ninja -DIPC_WERROR=ON "$@" >/dev/null
  ninja -C "$dir" -j "$jobs"
  echo "== $dir: test"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" $filter) || status=1
}

run_tree build "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${IPC_TEST_QUICK:-0}" != 1 ]; then
  run_tree build-asan "-LE bench" -DCMAKE_BUILD_TYPE=Debug -DIPC_SANITIZE_ADDRESS=ON -DIPC_BUILD_BENCHMARKS=OFF
  run_tree build-tsan "-L thread" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPC_SANITIZE_THREAD=ON \
    -DIPC_BUILD_BENCHMARKS=OFF -DIPC_BUILD_EXAMPLES=OFF
  # Only the fuzz targets are built here; their tests live in the fuzz/ subtree.
  echo "== build-fuzz-ci: configure and build"
  cmake -S . -B build-fuzz-ci -G Ninja -DIPC_WERROR=ON -DCMAKE_CXX_COMPILER=clang++ -DIPC_FUZZ=ON \
    -DIPC_BUILD_TESTS=OFF -DIPC_BUILD_BENCHMARKS=OFF -DIPC_BUILD_EXAMPLES=OFF >/dev/null
  ninja -C build-fuzz-ci -j "$jobs" request_fuzz segment_fuzz config_fuzz
  echo "== build-fuzz-ci: test"
  ctest --test-dir build-fuzz-ci/fuzz --output-on-failure -j "$jobs" -L fuzz || status=1
fi
exit $status
