#!/usr/bin/env bash
# Installs the build tree into a scratch prefix with `cmake --install`,
# checks that every packaged file is there, then configures and builds
# tests/consumer against that prefix with find_package(ipc) and runs its
# two programs (ipc::ipc = libipc.so, ipc::ipc_static = libipc.a).
#
# usage: install_consumer.sh CMAKE BUILD_DIR SOURCE_DIR LIBDIR GENERATOR CXX
. "$(dirname "$0")/common.sh"
cmake=$1 build=$2 src=$3 libdir=$4 generator=$5 cxx=$6
prefix=$scratch/prefix

"$cmake" --install "$build" --prefix "$prefix" >"$scratch/install.log" || { cat "$scratch/install.log"; fail "cmake --install"; }

for f in bin/ipcd bin/ipcctl "$libdir/libipc.so" "$libdir/libipc.a" include/ipc/channel.hpp include/ipc/semaphore.hpp \
         "$libdir/cmake/ipc/ipcConfig.cmake" "$libdir/cmake/ipc/ipcConfigVersion.cmake" "$libdir/cmake/ipc/ipcTargets.cmake" \
         "$libdir/pkgconfig/ipc.pc" share/man/man1/ipcctl.1 share/man/man7/libipc.7 share/man/man8/ipcd.8 \
         share/bash-completion/completions/ipcctl share/doc/ipc/README.md share/doc/ipc/protocol.md etc/ipcd/ipcd.conf; do
  need_file "$prefix/$f"
done
for unit in "$src"/systemd/*.service "$src"/systemd/*.socket; do
  [ -e "$unit" ] || continue
  need_file "$prefix/lib/systemd/system/$(basename "$unit")"
done
[ ! -e "$prefix/sbin/ipcd" ] || fail "ipcd is installed in sbin too"

"$cmake" -S "$src/tests/consumer" -B "$scratch/consumer" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" >"$scratch/configure.log" 2>&1 ||
  { cat "$scratch/configure.log"; fail "configuring the consumer with find_package(ipc)"; }
"$cmake" --build "$scratch/consumer" >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; fail "building the consumer"; }

for exe in consumer consumer_static; do
  out=$("$scratch/consumer/$exe") || fail "$exe exited with $?"
  [ "$out" = ok ] || fail "$exe printed '$out', not 'ok'"
  echo "$exe: $out"
done
# The shared one really uses the installed libipc.so, the static one does not.
deps=$(ldd "$scratch/consumer/consumer")
[[ $deps == *"$prefix/$libdir/libipc.so"* ]] || { echo "$deps"; fail "consumer does not load $prefix/$libdir/libipc.so"; }
deps=$(ldd "$scratch/consumer/consumer_static")
[[ $deps != *libipc* ]] || { echo "$deps"; fail "consumer_static needs libipc.so"; }
echo "install + find_package(ipc) consumer: ok"
