#!/usr/bin/env bash
# Installs what is needed, builds everything, and runs the main job: a live
# demo of the shared-memory channel used as a semaphore across processes,
# then ipcd on a socket of its own with worker processes sharing a
# 3-permit semaphore.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j "$(nproc)"

echo
echo "== A buffered channel of capacity 3 as a semaphore (Go's sem <- 1 ... <-sem), across processes"
build/examples/channel_semaphore --requests 10 --workers 6 --slots 3

if [ -x scripts/demo-daemon.sh ] && [ -x build/daemon/ipcd ]; then
  echo
  echo "== ipcd: a semaphore of 3 permits served to 8 unrelated worker processes"
  scripts/demo-daemon.sh build
fi
