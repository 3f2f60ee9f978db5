#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds and tests with.
# Idempotent: skips apt-get when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  liburing-dev libboost-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libsystemd-dev libtomlplusplus-dev
  python3 dpkg-dev
  systemd  # systemd-analyze and systemd-socket-activate for tests/systemd_test.cpp
  spin  # model/run.sh: the SPIN model checker (docs/model.md)
  clang libclang-rt-14-dev  # libFuzzer: fuzz/, scripts/fuzz.sh (docs/fuzzing.md)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
