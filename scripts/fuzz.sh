#!/usr/bin/env bash
# Runs one libFuzzer target for a long time (docs/fuzzing.md):
#
#   scripts/fuzz.sh TARGET [SECONDS]     TARGET: request, segment or config
#
# Builds it in build-fuzz (clang++, IPC_FUZZ=ON) if needed, then runs one
# job per core (-jobs/-workers) for SECONDS (default 600) over a persistent
# work corpus seeded from fuzz/corpus/TARGET and fuzz/regressions/TARGET.
# At the end it merges what the jobs found into a minimized corpus and
# prints executions, coverage and findings.
#
#   IPC_FUZZ_BUILD   build tree          (default: build-fuzz)
#   IPC_FUZZ_WORK    work directory      (default: BUILD/fuzz-work/TARGET)
#   IPC_FUZZ_JOBS    parallel jobs       (default: nproc)
#
# A job that finds a crash stops and leaves it in WORK/artifacts; add it to
# fuzz/regressions/TARGET once fixed. New coverage stays in WORK/corpus;
# copy a few meaningful inputs to fuzz/corpus/TARGET by hand if they help.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/fuzz.sh request|segment|config [SECONDS]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
target=${1%_fuzz}
case $target in request|segment|config) ;; *) usage ;; esac
seconds=${2:-600}
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { echo "fuzz.sh: SECONDS must be a positive integer" >&2; exit 2; }

build=${IPC_FUZZ_BUILD:-build-fuzz}
work=$(realpath -m "${IPC_FUZZ_WORK:-$build/fuzz-work/$target}")
jobs=${IPC_FUZZ_JOBS:-$(nproc)}
root=$(pwd)

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DIPC_FUZZ=ON \
    -DIPC_BUILD_BENCHMARKS=OFF -DIPC_BUILD_EXAMPLES=OFF -DIPC_BUILD_TESTS=OFF >/dev/null
fi
ninja -C "$build" "${target}_fuzz"
fuzzer=$(realpath "$build/fuzz/${target}_fuzz")
read -r -a options <"$build/fuzz/$target.options"

mkdir -p "$work/corpus" "$work/artifacts" "$work/logs"
rm -f "$work"/logs/fuzz-*.log
seeds=("$root/fuzz/corpus/$target")
[ -n "$(ls -A "$root/fuzz/regressions/$target" 2>/dev/null)" ] && seeds+=("$root/fuzz/regressions/$target")

echo "== $target: $jobs jobs for ${seconds}s, corpus $work/corpus"
before=$(ls "$work/artifacts" | wc -l)
# Options given later win, so ours override the artifact prefix in $target.options.
(cd "$work/logs" && "$fuzzer" "${options[@]}" -artifact_prefix="$work/artifacts/" -jobs="$jobs" \
  -workers="$jobs" -max_total_time="$seconds" -reload=10 "$work/corpus" "${seeds[@]}" >/dev/null 2>&1) || true

# Figures of each job: its last status line ("#N ... cov: C ft: F corp: ... exec/s: E").
execs=0 rate=0
for log in "$work"/logs/fuzz-*.log; do
  line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  [ -n "$line" ] || continue
  n=${line%%[[:space:]]*}; n=${n#\#}
  e=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$line")
  execs=$((execs + n)); rate=$((rate + ${e:-0}))
  echo "   $(basename "$log"): $line"
done

# Merge the jobs' finds into a minimized corpus, then measure it.
mkdir -p "$work/merged"
"$fuzzer" "${options[@]}" -merge=1 "$work/merged" "$work/corpus" "${seeds[@]}" >"$work/logs/merge.log" 2>&1 || true
if [ -n "$(ls -A "$work/merged")" ]; then
  rm -rf "$work/corpus" && mv "$work/merged" "$work/corpus"
else
  rm -rf "$work/merged"
fi
inited=$("$fuzzer" "${options[@]}" -runs=0 "$work/corpus" 2>&1 | grep -E 'INITED' | tail -n 1 || true)
cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$inited")
ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$inited")
files=$(ls "$work/corpus" | wc -l)
bytes=$(du -sb "$work/corpus" | cut -f1)
found=$(( $(ls "$work/artifacts" | wc -l) - before ))

echo "== $target: ${seconds}s x $jobs jobs: $execs executions (about $rate exec/s in all)"
echo "   coverage: ${cov:-?} edges, ${ft:-?} features; corpus: $files inputs, $bytes bytes"
if [ "$found" -gt 0 ]; then
  echo "   FINDINGS: $found new in $work/artifacts:"
  ls -t "$work/artifacts" | head -n "$found" | sed 's/^/     /'
  echo "   reproduce: $fuzzer ${options[*]} $work/artifacts/FILE"
  exit 1
fi
echo "   findings: none"
