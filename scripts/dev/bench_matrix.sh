#!/bin/sh
# bench_matrix.sh [OUT_DIR]: the runs behind the README's "Performance on lavapipe" tables,
# each `refract bench vit --peer torch` writing its JSON into OUT_DIR (default
# bench-results/, ignored by git), then the tables in OUT_DIR/tables.md
# (scripts/dev/bench_table.lua). About 50 minutes on 2 cores. Run it on a machine left
# alone: the ratios come from one run each, but a busy machine slows one side more than
# the other.
#
# The peer's `head` (the N x N x heads x width tensor per layer) takes ~40 s per ViT-B/16
# image and ~4 min per ViT-L/14 image on 2 cores, and is linear in the batch: it runs at
# batch 1 only (at larger batches its tensors exceed the host's memory and it is skipped).
# A later file's row for the same model, dtype, batch and method replaces an earlier one.
# ViT-H/14 runs in f16: its f32 weights (2.4 GiB) exceed lavapipe's 2 GiB heap.
set -eu
cd "$(dirname "$0")/../.."
out=${1:-bench-results}
mkdir -p "$out"
export LP_NUM_THREADS="${LP_NUM_THREADS:-2}"
bench() { name=$1; shift; echo "== $name: refract bench vit $*"; build/refract bench vit "$@" --peer torch --json "$out/$name.json"; }

bench b16-batch1 --arch ViT-B-16 --batch 1 --dtype f32,f16 --rounds 2
bench b16-batch8-32 --arch ViT-B-16 --batch 8,32 --dtype f32,f16 --peer-method encode,heads
bench l14 --arch ViT-L-14 --batch 1,8 --dtype f32,f16 --peer-method encode,heads
bench h14 --arch ViT-H-14 --batch 1,8 --dtype f16 --peer-method encode,heads
bench l14-spatial --arch ViT-L-14 --batch 1,8 --dtype f32 --method spatial
bench h14-f32 --arch ViT-H-14 --batch 1 --dtype f32 --method encode 2>&1 | tail -3 || true
build/refract scripts/dev/bench_table.lua "$out"/b16-batch1.json "$out"/b16-batch8-32.json \
    "$out"/l14.json "$out"/l14-spatial.json "$out"/h14.json >"$out/tables.md"
echo "tables: $out/tables.md"
