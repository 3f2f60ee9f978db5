#!/usr/bin/env bash
# Builds bench/daemon_bench and ipcd (Release) and runs the benchmark with
# repetitions, then prints the machine, the load, and the binary's ratio
# table: the median of every figure, its spread, each peer's ratio to ipcd,
# and the targets of docs/performance.md ("## ipcd"), reached or not.
#
#   scripts/bench-daemon.sh                  3 interleaved repetitions, about 3 min
#   REPS=5 scripts/bench-daemon.sh           more samples, longer
#   SCHED=fifo scripts/bench-daemon.sh       under SCHED_FIFO (root): other work on
#                                            the machine no longer takes our CPUs
#   scripts/bench-daemon.sh --benchmark_filter='^rt/'   extra arguments go to the binary
#
# Environment: BUILD_DIR (default build-bench), REPS (3), MIN_TIME (0.2 s per
# repetition of a round-trip benchmark), WINDOW (1 s: each contention run),
# IDLE (5 s: each idle run), SESSIONS (1000: the idle sessions), SCHED (normal
# | fifo), OUT_DIR (BUILD_DIR/bench-results). The full console output and
# Google Benchmark's JSON are kept in OUT_DIR.
#
# Every benchmark starts its own ipcd (the one built in BUILD_DIR) on a
# socket in a temporary directory and stops it with SIGTERM; under
# SCHED=fifo ipcd and every client inherit the policy (the parent raises
# itself one level above its clients in the contention runs, so that it can
# always end them).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build-bench}
reps=${REPS:-3}
min_time=${MIN_TIME:-0.2}
window=${WINDOW:-1}
idle=${IDLE:-5}
sessions=${SESSIONS:-1000}
out_dir=${OUT_DIR:-$build_dir/bench-results}
sched=${SCHED:-normal}
case $sched in
  normal) launch=() ;;
  # timeout(1) runs outside chrt, as an ordinary task: should FIFO tasks
  # ever spin without end, the kernel's 5% share for others still lets it end
  # the run.
  fifo) launch=(timeout -s KILL 1200 chrt -f 10) ;;
  *) echo "bench-daemon.sh: SCHED must be normal or fifo, not '$sched'" >&2; exit 2 ;;
esac

if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIPC_BUILD_TESTS=OFF >/dev/null
fi
ninja -C "$build_dir" daemon_bench ipcd >/dev/null
mkdir -p "$out_dir"

echo "== machine"
echo "nproc:      $(nproc)"
echo "cpu:        $(lscpu | sed -n 's/^Model name:[[:space:]]*//p')"
echo "hypervisor: $(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p')"
echo "kernel:     $(uname -r)"
echo "load:       $(cut -d' ' -f1-3 /proc/loadavg) (before the run; other work on the machine adds noise)"
echo "scheduling: $sched, $reps interleaved repetitions; round trips >= ${min_time} s, contention ${window} s, idle ${idle} s"
if commit=$(git rev-parse --short HEAD 2>/dev/null); then
  git diff --quiet HEAD -- daemon libipc include 2>/dev/null || commit+=" + uncommitted daemon/libipc/include changes"
else
  commit="unknown (not a git checkout)"
fi
echo "commit:     $commit"
echo

status=0
"${launch[@]}" "$build_dir/bench/daemon_bench" \
  --daemon_bench_window="$window" --daemon_bench_idle="$idle" --daemon_bench_sessions="$sessions" \
  --benchmark_repetitions="$reps" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_min_time="$min_time" \
  --benchmark_out="$out_dir/daemon_bench.json" --benchmark_out_format=json \
  --benchmark_color=false \
  "$@" >"$out_dir/daemon_bench.txt" 2>&1 || status=$?

# Failures first, then the table that follows the console output.
grep -E 'ERROR OCCURRED|daemon_bench\[|watchdog|did not' "$out_dir/daemon_bench.txt" >&2 || true
sed -n '/^Medians of/,$p' "$out_dir/daemon_bench.txt"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "full output: $out_dir/daemon_bench.txt, JSON: $out_dir/daemon_bench.json"
exit $status
