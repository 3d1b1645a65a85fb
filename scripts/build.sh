#!/bin/sh
# Installs what refract needs from Debian's packages (only what is missing), then
# configures and builds it in ./build. Run as root, or as a user with sudo.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="cmake ninja-build pkg-config gcc libc6-dev libvulkan-dev mesa-vulkan-drivers
  glslang-tools vulkan-validationlayers liblua5.4-dev libstb-dev libjansson-dev libpcre2-dev
  libopenblas-dev liblapacke-dev zlib1g-dev libssl-dev libzip-dev libhdf5-dev
  libpng-dev libjpeg62-turbo-dev"
# The libFuzzer targets (CC=clang CMAKE_ARGS=-DRF_FUZZ=ON) need clang and its runtime.
case "${CMAKE_ARGS:-}" in
  *RF_FUZZ=ON*) PACKAGES="$PACKAGES clang libclang-rt-14-dev" ;;
esac
# Needed only by the tests: the Slurm test starts its own one-node cluster (it skips
# without them). SKIP_TEST_PACKAGES=1 leaves them out.
TEST_PACKAGES="slurmctld slurmd slurm-client munge"
[ "${SKIP_TEST_PACKAGES:-0}" = 1 ] || PACKAGES="$PACKAGES $TEST_PACKAGES"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_ARGS:-}
cmake --build build
