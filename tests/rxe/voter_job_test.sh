#!/usr/bin/env bash
# vigil-voter end to end over real verbs, replicas as separate vigil-replica processes: every
# job's output must equal the unreplicated run, and every injected fault must be logged as
# detected and handled. Usage: voter_job_test.sh BUILD_DIR
set -euo pipefail
B=$1
V=$B/voter/vigil-voter
R=$B/replica/vigil-replica
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Two inputs: "small" (6 MB) and "big" (40 MB: long enough for a replacement to rejoin: it
# catches up from the voter's log, or joins at an agreed checkpoint).
head -c 6000000 /dev/zero | tr '\0' 'v' > "$W/small.bin"
head -c 40000000 /dev/zero | tr '\0' 'w' > "$W/big.bin"
for in in small big; do
  "$R" --unreplicated --workload crc32 < "$W/$in.bin" > "$W/$in.want"
  echo "unreplicated crc32 of $in: $(cat "$W/$in.want")"
done

# job NAME INPUT EXPECT_LOG ARGS...: runs a crc32 job and checks output and log.
job() {
  local name=$1 in=$2 expect=$3; shift 3
  "$V" --insecure run --input "$W/$in.bin" --output "$W/$name.out" "$@" > "$W/$name.log" 2>&1 ||
    { cat "$W/$name.log"; fail "$name: vigil-voter exited with $?"; }
  grep '^job:' "$W/$name.log"
  cmp -s "$W/$in.want" "$W/$name.out" || { cat "$W/$name.log"; fail "$name: output differs"; }
  if [[ -n $expect ]] && ! grep -q "$expect" "$W/$name.log"; then
    cat "$W/$name.log"; fail "$name: log lacks '$expect'"
  fi
  echo "ok: $name"
}

job tmr-polling-bitflip small "repaired from replica" --mode tmr --signal polling --inject-bitflip 1:3
job dmr-notify-bitflip small "rolling back to the checkpoint" --mode dmr --signal notify --inject-bitflip 0:2
job tmr-rpc-crash big "caught up at event\|joined at the checkpoint" --mode tmr --signal rpc --inject-crash 2:2
job tmr-polling-hang big "no event within the 3000 ms deadline" --mode tmr --signal polling --inject-hang 0:2 --deadline-ms 3000
job dmr-notify-crash small "recovered from replica" --mode dmr --signal notify --inject-crash 1:3
job tmr-polling-kill small "its process is gone" --mode tmr --signal polling --inject-kill 1:300

# The same over a local cluster: three vigil-node agents, one replica per node.
source "$(dirname "$0")/../../scripts/cluster-lib.sh"
vigil_cluster_start "$B" 3 "$W"
trap 'vigil_cluster_stop; rm -rf "$W"' EXIT
job cluster-tmr-crash big "placed on node 'worker-1'" --nodes "$VIGIL_NODES" --mode tmr --signal polling \
  --inject-crash 0:2
grep -q "replica 0 incarnation 1 placed on node 'worker-2'" "$W/cluster-tmr-crash.log" ||
  { cat "$W/cluster-tmr-crash.log"; fail "the replacement was not placed on another node"; }
echo "ok: the replacement of replica 0 went to another node"

# vigilctl: a bit flip injected at run time through the node agent, while the job runs.
"$V" --insecure run --nodes "$VIGIL_NODES" --mode tmr --signal notify --input "$W/big.bin" \
  --output "$W/ctl.out" > "$W/ctl.log" 2>&1 &
vpid=$!
# Inject once every replica is connected to the voter: a flip that lands while a replica is still
# starting up may be overwritten by its own initialisation (seen under emulation, where a
# replica process takes over a second to start).
for _ in $(seq 300); do
  [[ $(grep -c "connected from replica-1-" "$W/ctl.log" || true) -ge 3 ]] && break
  sleep 0.1
done
"$B/node/vigilctl" --insecure --node 127.0.0.1:7722 status
"$B/node/vigilctl" --insecure --node 127.0.0.1:7722 inject bitflip --group 1 --replica 1 --incarnation 0 --bit 515
wait $vpid || { cat "$W/ctl.log"; fail "vigilctl job failed"; }
grep '^job:' "$W/ctl.log"
cmp -s "$W/big.want" "$W/ctl.out" || fail "vigilctl job: output differs"
grep -q "replica 1 outvoted" "$W/ctl.log" || { cat "$W/ctl.log"; fail "the flip was not detected"; }
echo "ok: vigilctl bitflip detected and repaired"

echo "all vigil-voter jobs passed"
