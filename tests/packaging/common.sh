# tests/packaging/common.sh - sourced by the packaging tests: a scratch
# directory removed on exit, failure and skip helpers (77 = CTest skip).
set -euo pipefail
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ipc-packaging.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
need_file() { [ -e "$1" ] || fail "not installed: $1"; }
