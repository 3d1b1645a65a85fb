#!/bin/bash
# Developer tool: the checks and measurements made on a machine with a real GPU (the
# device tool's H100/H200), from a bundle prepared here: .gpu/bin (refract and C tests,
# built on this Debian machine), .gpu/lib (their libraries; reference BLAS stands in for
# OpenBLAS, which is too large to carry, and LAPACKE is left out) and .gl (the Vulkan
# loader's Debian package). Every step runs even if an earlier one fails; the log says which.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nvidia_icd" ] && export VK_DRIVER_FILES=$nvidia_icd
export LD_LIBRARY_PATH=$root/.gpu/lib REFRACT_HOME=$root RF_TEST_DATA=$root/tests/data
B=$root/.gpu/bin
step() { echo; echo "=== $*"; local t0=$SECONDS; timeout 300 "$@"; local rc=$?; echo "=== rc=$rc ($((SECONDS - t0)) s)"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
step "$B/refract" devices
step "$B/refract" check
for t in test_runtime test_gemm test_nn test_tensor_ops test_clip test_intervene; do step "$B/$t"; done
step "$B/refract" tests/lua/test_tinyclip.lua
step "$B/refract" demo
step "$B/refract" bench gemm --seconds 0.5
step "$B/refract" bench vit --seconds 2 --no-f16
step "$B/refract" bench vit --seconds 2 --batch 32 --no-f16
