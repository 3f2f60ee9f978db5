#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds tests/consumer
# with a plain compiler command and `pkg-config --cflags --libs ipc`
# (PKG_CONFIG_PATH pointing into the prefix), against libipc.so and against
# libipc.a, and runs both.
#
# usage: pkgconfig_consumer.sh CMAKE BUILD_DIR SOURCE_DIR LIBDIR CXX VERSION
. "$(dirname "$0")/common.sh"
cmake=$1 build=$2 src=$3 libdir=$4 cxx=$5 version=$6
command -v pkg-config >/dev/null || skip "pkg-config is not installed (scripts/deps.sh installs it)"
prefix=$scratch/prefix

"$cmake" --install "$build" --prefix "$prefix" >"$scratch/install.log" || { cat "$scratch/install.log"; fail "cmake --install"; }
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
pkg-config --exists --print-errors ipc || fail "pkg-config does not find ipc in $PKG_CONFIG_PATH"
[ "$(pkg-config --modversion ipc)" = "$version" ] || fail "pkg-config --modversion ipc: $(pkg-config --modversion ipc), not $version"
echo "pkg-config --cflags --libs ipc: $(pkg-config --cflags --libs ipc)"

# shellcheck disable=SC2046  # pkg-config's output is meant to be split
"$cxx" -std=c++20 -O1 -o "$scratch/consumer" "$src/tests/consumer/main.cpp" $(pkg-config --cflags --libs ipc) ||
  fail "g++ with pkg-config --cflags --libs ipc"
# shellcheck disable=SC2046
"$cxx" -std=c++20 -O1 -o "$scratch/consumer_static" "$src/tests/consumer/main.cpp" $(pkg-config --cflags ipc) \
  -Wl,-Bstatic $(pkg-config --static --libs-only-L --libs-only-l ipc) -Wl,-Bdynamic $(pkg-config --static --libs-only-other ipc) ||
  fail "g++ with pkg-config --static --libs ipc"

out=$(LD_LIBRARY_PATH=$prefix/$libdir "$scratch/consumer") || fail "consumer exited with $?"
[ "$out" = ok ] || fail "consumer printed '$out', not 'ok'"
deps=$(LD_LIBRARY_PATH=$prefix/$libdir ldd "$scratch/consumer")
[[ $deps == *"$prefix/$libdir/libipc.so"* ]] || { echo "$deps"; fail "consumer does not load the installed libipc.so"; }
deps=$(ldd "$scratch/consumer_static")
[[ $deps != *libipc* ]] || { echo "$deps"; fail "consumer_static needs libipc.so"; }
out=$("$scratch/consumer_static") || fail "consumer_static exited with $?"
[ "$out" = ok ] || fail "consumer_static printed '$out', not 'ok'"
echo "pkg-config consumer (shared and static): ok"
