#!/bin/sh
# fuzz.sh [minutes] [target...]: builds the libFuzzer targets of tests/fuzz (clang,
# RF_FUZZ=ON, in build-fuzz/) and runs each for `minutes` (default 10; a fraction such as
# 0.5 is fine), two at a time. New inputs go to $FUZZ_WORK/<target> (default
# /tmp/refract-fuzz), never into the committed seed corpora; a crashing input is written
# there as crash-*/leak-*/timeout-* and the script exits 1. Prints each target's
# executions. Targets default to all of them: image safetensors npy config hf_tokenizer
# bpe lua. FUZZ_SEED=N fixes libFuzzer's seed. FUZZ_RUNS="target=N ..." makes the listed
# targets stop after N inputs instead of after `minutes`: with a fixed seed, such a run
# tries the same inputs on every machine however fast it is, so CI (which uses both) runs
# what a run here has run first; a time limit would let a faster machine go further into
# inputs nobody has tried. Crashing inputs go to $FUZZ_WORK/<target>.crash-* etc., outside
# the folder that later runs read as corpus.
set -eu
cd "$(dirname "$0")/../.."
minutes=${1:-10}
[ $# -gt 0 ] && shift
targets=${*:-"image safetensors npy config hf_tokenizer bpe lua"}
work=${FUZZ_WORK:-/tmp/refract-fuzz}
jobs=${FUZZ_JOBS:-2}
seconds=$(awk "BEGIN { printf \"%d\", $minutes * 60 }")

if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang cmake -S . -B build-fuzz -G Ninja -DRF_FUZZ=ON -DRF_BUILD_TESTS=OFF >/dev/null
fi
# Quiet when it builds; the whole log when it does not (a silent exit 1 says nothing).
cmake --build build-fuzz >"${TMPDIR:-/tmp}/refract-fuzz-build.log" 2>&1 ||
    { cat "${TMPDIR:-/tmp}/refract-fuzz-build.log"; exit 1; }

export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan_fuzz.supp:print_suppressions=0"
# The input count FUZZ_RUNS gives target $1, or nothing.
runs_for() {
    for pair in ${FUZZ_RUNS:-}; do
        [ "${pair%%=*}" = "$1" ] && { echo "${pair#*=}"; return; }
    done
}

run_one() {
    t=$1
    mkdir -p "$work/$t"
    log="$work/$t.log"
    n=$(runs_for "$t")
    if [ -n "$n" ]; then limit="-runs=$n"; what="$n inputs"; else limit="-max_total_time=$seconds"; what="${seconds}s"; fi
    # -rss_limit_mb: the targets cap their own sizes, so more memory than this is a finding.
    if (cd "$work/$t" && "$OLDPWD/build-fuzz/tests/fuzz/fuzz_$t" "$limit" \
            ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -artifact_prefix="$work/$t." \
            -rss_limit_mb=3072 -timeout=20 -print_final_stats=1 . \
            "$OLDPWD/tests/fuzz/corpus/$t") >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log and $work/$t.*)"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "fuzz_$t: ${runs:-?} executions (limit: $what): $result"
    [ "$result" = ok ]
}

status=0
pids=""
for t in $targets; do
    run_one "$t" &
    pids="$pids $!"
    if [ "$(echo $pids | wc -w)" -ge "$jobs" ]; then
        for p in $pids; do wait "$p" || status=1; done
        pids=""
    fi
done
for p in $pids; do wait "$p" || status=1; done
exit $status
