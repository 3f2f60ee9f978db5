#!/usr/bin/env bash
# The ipcd quick-start demo: a private daemon, one semaphore with 3 permits,
# and 8 unrelated worker processes competing for it.
#
#     scripts/demo-daemon.sh BUILD_DIR
#
# Starts BUILD_DIR/daemon/ipcd on a socket in a fresh temporary directory,
# waits until it answers, creates `demo` with 3 permits, starts 8
# BUILD_DIR/examples/sem_workers processes (each connects on its own), waits
# for them, shows `ipcctl list`, and stops the daemon with SIGTERM. Touches
# nothing outside its temporary directory, which it removes on any exit.
set -euo pipefail

usage() { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
build=$(cd "$1" && pwd) || usage

ipcd=$build/daemon/ipcd
ipcctl=$build/tools/ipcctl
workers=$build/examples/sem_workers
for bin in "$ipcd" "$ipcctl" "$workers"; do
  if [ ! -x "$bin" ]; then
    echo "$0: $bin is missing: build it first (cmake --build $build)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipcd-demo.XXXXXX")
sock=$tmp/ipcd.sock
log=$tmp/ipcd.log
daemon_pid=

cleanup() {
  local status=$?
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$log" ]; then
    echo "--- ipcd log" >&2
    cat "$log" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export IPCD_SOCKET=$sock   # ipcctl and the workers find the daemon here

"$ipcd" --socket "$sock" --config /dev/null --state-dir "$tmp/state" 2>"$log" &
daemon_pid=$!

# Wait until it answers: at most 5 s, giving up at once if it died.
ready=no
for _ in $(seq 50); do
  if "$ipcctl" status >/dev/null 2>&1; then ready=yes; break; fi
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != yes ]; then
  echo "$0: ipcd did not answer on $sock" >&2
  exit 1
fi
"$ipcctl" status
echo

"$ipcctl" create demo --permits 3
echo "created semaphore demo with 3 permits; starting 8 workers"
out=$tmp/workers.out
# Eight separate processes, each with its own session; their lines go
# through tee as they happen and are kept for the count below.
{
  pids=()
  for n in 1 2 3 4 5 6 7 8; do
    "$workers" "$n" demo &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  exit "$failed"
} | tee "$out" || { echo "$0: a worker failed" >&2; exit 1; }

peak=$(sed -n 's/.*, \([0-9]*\) of 3 in use.*/\1/p' "$out" | sort -n | tail -n 1)
echo
echo "most permits in use seen by a worker: $peak of 3 (8 workers)"
echo
"$ipcctl" list
echo

kill -TERM "$daemon_pid"
wait "$daemon_pid" || { echo "$0: ipcd exited with status $?" >&2; exit 1; }
daemon_pid=
echo "ipcd stopped"
