#!/bin/bash
# The Slurm path for real: starts a one-node cluster on this machine (munged, slurmctld,
# slurmd; generated munge key and slurm.conf in a temporary folder; three fake GPUs),
# submits a 3-shard decompose array and its merge with scripts/slurm/submit.sh, and
# checks the merged file against one uninterrupted run, byte for byte. Then kills one
# array task with kill -9 mid-run, sees the merge held back, submits that task again
# (submit.sh -t) and checks the bytes again. Everything it started is stopped at the end,
# whatever happens (trap). Exits 77 (skipped) only when it cannot run: not root, or the
# Slurm and munge programs are not installed (scripts/build.sh installs them).
#
#   tests/slurm/test_slurm.sh REFRACT_EXECUTABLE
set -uo pipefail
refract=${1:?usage: test_slurm.sh REFRACT_EXECUTABLE}
refract=$(cd "$(dirname "$refract")" && pwd)/$(basename "$refract")
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
data=$source_dir/tests/data/tiny-gelu

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "the test cluster's daemons run as root (run the tests as root, as CI does)"
for program in munged munge slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
  command -v "$program" > /dev/null || skip "$program is not installed (scripts/build.sh installs slurmctld slurmd slurm-client munge)"
done

start_time=$(date +%s.%N)
work=$(mktemp -d /tmp/refract-slurm-XXXXXX)
chmod 755 "$work"
export SLURM_CONF=$work/slurm.conf
daemons=()

# Stops every job and daemon this test started and removes its folder.
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  if [ -n "${holder:-}" ]; then kill -9 "$holder" 2> /dev/null; fi
  if scontrol ping > /dev/null 2>&1; then
    scancel --full --quiet $(squeue -h -o %A 2> /dev/null | sort -u) 2> /dev/null
    for _ in $(seq 1 100); do
      [ -z "$(squeue -h 2> /dev/null)" ] && break
      sleep 0.2
    done
  fi
  for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do kill "${daemons[i]}" 2> /dev/null; done
  for pid in "${daemons[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null
  done
  if [ "$code" != 0 ] && [ "$code" != 77 ]; then
    for log in "$work"/log/*.log "$work"/*.out; do
      [ -f "$log" ] && { echo "--- $log (last lines)"; tail -n 25 "$log"; }
    done
  fi
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*"; exit 1; }

# The pid of the process whose command line contains $1 (no procps needed).
find_process() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' < "$p/cmdline" 2> /dev/null | grep -qF -- "$1"; then echo "${p#/proc/}"; return; fi
  done
}

# {===== the cluster
mkdir -p "$work/munge" "$work/state" "$work/spool" "$work/log" "$work/dev"
chmod 700 "$work/munge"
head -c 1024 /dev/urandom > "$work/munge/munge.key"
chmod 400 "$work/munge/munge.key"
munged -F -f --socket="$work/munge/socket" --key-file="$work/munge/munge.key" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
  --seed-file="$work/munge/seed" > "$work/log/munged.out" 2>&1 &
daemons+=($!)
for _ in $(seq 1 100); do
  munge -S "$work/munge/socket" -n > /dev/null 2>&1 && break
  sleep 0.05
done
munge -S "$work/munge/socket" -n | unmunge -S "$work/munge/socket" > /dev/null || fail "munged does not answer"

node=$(uname -n | cut -d. -f1)
cpus=$(nproc)
# Three GPUs that are not there: gres/gpu needs device files, so links to /dev/null.
for i in 0 1 2; do ln -s /dev/null "$work/dev/gpu$i"; done
echo "NodeName=$node Name=gpu File=$work/dev/gpu[0-2]" > "$work/gres.conf"

# Ports: a pair that nothing listens on.
port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
port=$((20000 + RANDOM % 20000))
for _ in $(seq 1 50); do
  port_free "$port" && port_free $((port + 1)) && break
  port=$((20000 + RANDOM % 20000))
done

cat > "$SLURM_CONF" << EOF
ClusterName=refract-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
MinJobAge=3600
KillWait=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus Gres=gpu:3 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -f "$SLURM_CONF" > "$work/log/slurmctld.out" 2>&1 &
daemons+=($!)
for _ in $(seq 1 200); do scontrol ping > /dev/null 2>&1 && break; sleep 0.05; done
scontrol ping > /dev/null 2>&1 || fail "slurmctld does not answer"
slurmd -D -f "$SLURM_CONF" > "$work/log/slurmd.out" 2>&1 &
daemons+=($!)
idle=""
for _ in $(seq 1 300); do
  state=$(sinfo -h -n "$node" -o %T 2> /dev/null)
  [ "$state" = idle ] && { idle=1; break; }
  sleep 0.1
done
[ -n "$idle" ] || fail "the node did not come up (state: ${state:-none})"
setup_time=$(awk "BEGIN { print $(date +%s.%N) - $start_time }")
printf 'setup: munged, slurmctld and slurmd up, node %s idle with %d CPUs and 3 GPUs in %.1f s\n' \
  "$node" "$cpus" "$setup_time"
# }=====

# {===== the data and one uninterrupted run
cd "$work"
cp "$data"/images/*.png "$data"/images/*.jpg "$work/"
images=(00_exact_disc.png 01_large_pentagon.png 02_wide_triangle.png 03_tall_ellipse.png
  04_small_square.png 05_gray_checker.png 06_rgba_diamond.png 07_noise_star.jpg)
: > list.txt
for i in $(seq 0 11); do echo "${images[i % 8]}" >> list.txt; done
args=(--model "$data/model" --list "$work/list.txt" --spatial --chunk-size 2 --batch 2)
"$refract" decompose "${args[@]}" --chunks "$work/ref" --out "$work/ref-means.safetensors" > ref.log 2>&1 \
  || { cat ref.log; fail "the single run"; }
"$refract" merge --chunks "$work/ref" --out "$work/ref.safetensors" > /dev/null || fail "merging the single run"
# }=====

export REFRACT=$refract
submit() {
  local line
  line=$("$source_dir/scripts/slurm/submit.sh" "$@") || fail "submit.sh $*"
  echo "$line" >&2
  array_job=$(echo "$line" | sed -n 's/.*job array \([0-9]*\).*/\1/p')
  merge_job=$(echo "$line" | sed -n 's/.*merge: job \([0-9]*\).*/\1/p')
  [ -n "$array_job" ] && [ -n "$merge_job" ] || fail "no job ids in: $line"
}

job_state() { scontrol show job "$1" 2> /dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
job_reason() { scontrol show job "$1" 2> /dev/null | sed -n 's/.*Reason=\([^ ]*\).*/\1/p' | head -n 1; }

# Waits until job $1 has ended (up to $2 seconds); prints its state.
wait_job() {
  local state
  for _ in $(seq 1 $(($2 * 5))); do
    state=$(job_state "$1")
    case $state in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED) echo "$state"; return ;; esac
    sleep 0.2
  done
  echo "${state:-UNKNOWN}"
}

same_chunks() {
  local f
  for f in ref/part-*; do cmp -s "$f" "$1/$(basename "$f")" || fail "$1/$(basename "$f") differs from the single run's"; done
}

# {===== 3 shards through sbatch, merged after them
submit 3 "$work/array.safetensors" --cpus-per-task=1 -- "${args[@]}" --chunks "$work/array"
[ "$(wait_job "$merge_job" 300)" = COMPLETED ] || fail "the merge job did not complete"
for task in 1 2 3; do
  [ "$(job_state "${array_job}_$task")" = COMPLETED ] || fail "array task $task: $(job_state "${array_job}_$task")"
done
cmp array.safetensors ref.safetensors || fail "the merged array run differs from the single run"
same_chunks array
echo "3 array tasks and their merge: byte-identical to the single run"
# }=====

# {===== one task killed mid-run, submitted again
# Task 2 (chunks 2 and 5 of 6) cannot end before it is killed: another process holds
# chunk 5's lock until then, so task 2 is alive, with chunk 2 made, when kill -9 comes.
mkdir -p "$work/killed"
"$refract" -e "local l = assert(require('refract').lock('$work/killed/part-000005.lock'))
  io.open('$work/holding', 'w'):close() require('refract').sleep(600)" &
holder=$!
for _ in $(seq 1 200); do [ -f "$work/holding" ] && break; sleep 0.05; done
submit 3 "$work/killed.safetensors" --cpus-per-task=1 -- "${args[@]}" --chunks "$work/killed"
victim=""
for _ in $(seq 1 1500); do
  if [ -f killed/part-000002.sha256 ]; then
    victim=$(find_process "$work/killed --shard 2/3")
    [ -n "$victim" ] && break
  fi
  sleep 0.2
done
[ -n "$victim" ] || fail "array task 2 never ran (state $(job_state "${array_job}_2"))"
kill -9 "$victim"
echo "killed array task 2's refract (pid $victim) after it made chunk 2"
[ "$(wait_job "${array_job}_2" 120)" = FAILED ] || fail "array task 2 should have failed"
for task in 1 3; do
  [ "$(wait_job "${array_job}_$task" 300)" = COMPLETED ] || fail "array task $task: $(job_state "${array_job}_$task")"
done
sleep 1
[ "$(job_state "$merge_job")" = PENDING ] || fail "the merge ran although task 2 failed: $(job_state "$merge_job")"
echo "the merge job waits: $(job_reason "$merge_job")"
[ ! -f killed.safetensors ] || fail "a merged file exists"
scancel "$merge_job"
kill -9 "$holder"
wait "$holder" 2> /dev/null
holder=""
[ ! -f killed/part-000005.sha256 ] || fail "chunk 5 was made while its lock was held"
submit -t 2 3 "$work/killed.safetensors" --cpus-per-task=1 -- "${args[@]}" --chunks "$work/killed"
[ "$(wait_job "$merge_job" 300)" = COMPLETED ] || fail "the merge after the resubmitted task did not complete"
cmp killed.safetensors ref.safetensors || fail "the merged run after a kill differs from the single run"
same_chunks killed
echo "task 2 submitted again and merged: byte-identical to the single run"
# }=====

total=$(awk "BEGIN { print $(date +%s.%N) - $start_time }")
printf 'slurm test passed: setup %.1f s, total %.1f s\n' "$setup_time" "$total"
