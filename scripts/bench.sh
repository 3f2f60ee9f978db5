#!/usr/bin/env bash
# Builds bench/channel_bench (Release) and runs it with repetitions, then
# prints the machine, the load, and the binary's ratio table: the median of
# every figure, its spread, its ratio to this project's, and the targets of
# docs/performance.md, reached or not.
#
#   scripts/bench.sh                      3 interleaved repetitions, about 40 s
#   REPS=5 MIN_TIME=0.5 scripts/bench.sh  more samples, longer
#   SCHED=fifo scripts/bench.sh           under SCHED_FIFO (root): other work on
#                                         the machine no longer takes our CPUs
#   scripts/bench.sh --benchmark_filter='^rt/'   extra arguments go to the binary
#
# Environment: BUILD_DIR (default build-bench), REPS (3), MIN_TIME (0.2 s per
# repetition), SCHED (normal | fifo), OUT_DIR (BUILD_DIR/bench-results). The
# full console output and Google Benchmark's JSON are kept in OUT_DIR.
#
# SCHED=fifo runs the binary and its children with chrt -f 10. Compilers and
# tests of other users then get only the kernel's 5% share for ordinary tasks
# while a benchmark runs, so the figures show the mechanisms rather than the
# scheduler; every benchmark still ends within its watchdog.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build-bench}
reps=${REPS:-3}
min_time=${MIN_TIME:-0.2}
out_dir=${OUT_DIR:-$build_dir/bench-results}
sched=${SCHED:-normal}
case $sched in
  normal) launch=() ;;
  fifo) launch=(chrt -f 10) ;;
  *) echo "bench.sh: SCHED must be normal or fifo, not '$sched'" >&2; exit 2 ;;
esac

if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIPC_BUILD_TESTS=OFF >/dev/null
fi
ninja -C "$build_dir" channel_bench >/dev/null
mkdir -p "$out_dir"

echo "== machine"
echo "nproc:      $(nproc)"
echo "cpu:        $(lscpu | sed -n 's/^Model name:[[:space:]]*//p')"
echo "hypervisor: $(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p')"
echo "kernel:     $(uname -r)"
echo "load:       $(cut -d' ' -f1-3 /proc/loadavg) (before the run; other work on the machine adds noise)"
echo "scheduling: $sched, $reps interleaved repetitions of at least ${min_time} s"
echo "commit:     $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- libipc include 2>/dev/null || echo ' + uncommitted libipc/include changes')"
echo

status=0
"${launch[@]}" "$build_dir/bench/channel_bench" \
  --benchmark_repetitions="$reps" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_min_time="$min_time" \
  --benchmark_out="$out_dir/channel_bench.json" --benchmark_out_format=json \
  --benchmark_color=false \
  "$@" >"$out_dir/channel_bench.txt" 2>&1 || status=$?

# Failures first, then the table that follows the console output.
grep -E 'ERROR OCCURRED|channel_bench\[|watchdog' "$out_dir/channel_bench.txt" >&2 || true
sed -n '/^Medians of/,$p' "$out_dir/channel_bench.txt"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "full output: $out_dir/channel_bench.txt, JSON: $out_dir/channel_bench.json"
exit $status
