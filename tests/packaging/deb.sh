#!/usr/bin/env bash
# Builds the .deb with CPack into a scratch directory, checks its control
# fields and contents, unpacks it with `dpkg -x` into a scratch root and runs
# the unpacked ipcctl and ipcd.
#
# usage: deb.sh CPACK BUILD_DIR VERSION
. "$(dirname "$0")/common.sh"
cpack=$1 build=$2 version=$3
command -v dpkg-deb >/dev/null || skip "dpkg-deb is not installed (scripts/deps.sh installs dpkg-dev)"

(cd "$build" && "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$scratch/out") >"$scratch/cpack.log" 2>&1 ||
  { cat "$scratch/cpack.log"; fail "cpack -G DEB"; }
debs=("$scratch"/out/ipc_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || { ls -l "$scratch/out"; fail "expected one ipc_*.deb"; }
deb=${debs[0]}
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = ipc ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), not $version"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
depends=$(field Depends)
echo "Depends: $depends"
for d in liburing2 libsystemd0; do
  [[ $depends == *"$d"* ]] || fail "Depends lacks $d"
done

dpkg-deb -c "$deb" >"$scratch/contents"
for f in ./usr/bin/ipcd ./usr/bin/ipcctl ./usr/include/ipc/channel.hpp ./usr/share/man/man1/ipcctl.1 \
         ./usr/share/man/man7/libipc.7 ./usr/share/man/man8/ipcd.8 ./usr/share/bash-completion/completions/ipcctl ./etc/ipcd/ipcd.conf; do
  grep -q " $f\$" "$scratch/contents" || { cat "$scratch/contents"; fail "$f is not in the package"; }
done
for f in libipc.so libipc.a pkgconfig/ipc.pc cmake/ipc/ipcConfig.cmake; do
  grep -q "/lib/.*$f\$" "$scratch/contents" || grep -q "/lib/.*$f -> " "$scratch/contents" ||
    { cat "$scratch/contents"; fail "$f is not in the package"; }
done

dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$scratch/conffiles" 2>/dev/null ||
  fail "the package has no conffiles"
grep -qx /etc/ipcd/ipcd.conf "$scratch/conffiles" || { cat "$scratch/conffiles"; fail "/etc/ipcd/ipcd.conf is not a conffile"; }

root=$scratch/root
if command -v dpkg >/dev/null; then dpkg -x "$deb" "$root"; else dpkg-deb -x "$deb" "$root"; fi
libdir=$(dirname "$(find "$root/usr" -name 'libipc.so*' -print -quit)")
export LD_LIBRARY_PATH=$libdir  # in case the binaries link libipc.so
out=$("$root/usr/bin/ipcctl" --version) || fail "unpacked ipcctl --version exited with $?"
echo "$out"
[[ $out == "ipcctl $version "* ]] || fail "ipcctl --version printed '$out'"
out=$("$root/usr/bin/ipcd" --version) || fail "unpacked ipcd --version exited with $?"
echo "$out"
[[ $out == "ipcd $version "* ]] || fail "ipcd --version printed '$out'"
# The shipped sample parses and changes nothing: a daemon started with it
# comes up (and is stopped at once).
"$root/usr/bin/ipcd" --config "$root/etc/ipcd/ipcd.conf" --socket "$scratch/ipcd.sock" \
  --state-dir "$scratch/state" 2>"$scratch/ipcd.log" &
ipcd_pid=$!
for _ in $(seq 100); do [ -S "$scratch/ipcd.sock" ] && break; sleep 0.05; done
[ -S "$scratch/ipcd.sock" ] || { kill -9 "$ipcd_pid"; cat "$scratch/ipcd.log"; fail "ipcd did not start with the sample"; }
kill "$ipcd_pid"
wait "$ipcd_pid" || { cat "$scratch/ipcd.log"; fail "ipcd with the shipped sample exited with $?"; }
echo "deb: ok"
