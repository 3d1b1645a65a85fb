#!/bin/bash
# Submits a sharded `refract decompose` to Slurm: a job array of N tasks (shard K/N each,
# one GPU per task, decompose.sbatch) and `refract merge` (merge.sbatch) as a job that
# starts when every task has succeeded (--dependency=afterok).
#
#   scripts/slurm/submit.sh [-t TASKS] N OUT [SBATCH_OPTION...] -- DECOMPOSE_ARGUMENT...
#
#   N                  the number of shards (array tasks 1..N)
#   OUT                the merged .safetensors file
#   -t TASKS           submit only these tasks (e.g. 2 or 2,5 or 3-4): to run again the
#                      shards that failed or were killed; the merge then waits for them
#   SBATCH_OPTION      passed to both sbatch calls (--partition=gpu, --time=2:00:00, ...)
#   DECOMPOSE_ARGUMENT refract decompose's options, with --chunks DIR (on a shared file
#                      system) and without --shard and --out
#   $REFRACT           the refract executable on the nodes (default: refract on PATH)
#
# Prints the two job ids. Example:
#   scripts/slurm/submit.sh 16 /shared/runs/h14.safetensors --partition=gpu -- \
#       --model /shared/ViT-H-14 --list /shared/imagenet/val.txt --chunks /shared/runs/h14
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
tasks=""
if [ "${1:-}" = "-t" ]; then
  [ $# -ge 2 ] || usage
  tasks=$2
  shift 2
fi
[ $# -ge 3 ] || usage
shards=$1 out=$2
shift 2
case $shards in ''|*[!0-9]*|0) echo "submit.sh: N must be a positive number of shards, not '$shards'" >&2; exit 2 ;; esac
sbatch_options=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  sbatch_options+=("$1")
  shift
done
[ "${1:-}" = "--" ] || usage
shift
chunks=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --chunks) chunks=${args[i + 1]:-} ;;
    --shard|--out|--devices) echo "submit.sh: give decompose no ${args[i]} (each task gets its --shard; merge writes OUT)" >&2; exit 2 ;;
  esac
done
[ -n "$chunks" ] || { echo "submit.sh: the decompose arguments need --chunks DIR (a folder every node can reach)" >&2; exit 2; }

array=${tasks:-1-$shards}
job=$(sbatch --parsable --array="$array" --export=ALL,REFRACT_SHARDS="$shards" \
  "${sbatch_options[@]}" "$here/decompose.sbatch" "$@")
job=${job%%;*}
merge=$(sbatch --parsable --dependency=afterok:"$job" "${sbatch_options[@]}" \
  "$here/merge.sbatch" --chunks "$chunks" --out "$out")
merge=${merge%%;*}
echo "decompose: job array $job (tasks $array of $shards shards); merge: job $merge, after all of them succeed"
