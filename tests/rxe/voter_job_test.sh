#!/usr/bin/env bash
# vigil-voter end to end over real verbs, replicas as separate vigil-replica processes: every
# job's output must equal the unreplicated run, and every injected fault must be logged as
# detected and handled. Usage: voter_job_test.sh BUILD_DIR
set -euo pipefail
B=$1
V=$B/voter/vigil-voter
R=$B/node/vigil-replica
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

head -c 1500000 /dev/zero | tr '\0' 'v' > "$W/in.bin"
"$R" --unreplicated --workload crc32 < "$W/in.bin" > "$W/want.txt"
echo "unreplicated crc32: $(cat "$W/want.txt")"

# job NAME EXPECT_LOG ARGS...: runs a crc32 job and checks output and log.
job() {
  local name=$1 expect=$2; shift 2
  "$V" run --input "$W/in.bin" --output "$W/$name.out" "$@" > "$W/$name.log" 2>&1 ||
    { cat "$W/$name.log"; fail "$name: vigil-voter exited with $?"; }
  grep '^job:' "$W/$name.log"
  cmp -s "$W/want.txt" "$W/$name.out" || { cat "$W/$name.log"; fail "$name: output differs"; }
  if [[ -n $expect ]] && ! grep -q "$expect" "$W/$name.log"; then
    cat "$W/$name.log"; fail "$name: log lacks '$expect'"
  fi
  echo "ok: $name"
}

job tmr-polling-bitflip "repaired from replica" --mode tmr --signal polling --inject-bitflip 1:4
job dmr-notify-bitflip "rolling back to the checkpoint" --mode dmr --signal notify --inject-bitflip 0:3
job tmr-rpc-kill "joined at the checkpoint" --mode tmr --signal rpc --inject-kill 2:400 --deadline-ms 3000
job tmr-polling-hang "no event within the 3000 ms deadline" --mode tmr --signal polling --inject-stop 0:400 --deadline-ms 3000
job dmr-polling-kill "recovered from replica" --mode dmr --signal polling --inject-kill 1:400 --deadline-ms 3000

# The same over a local cluster: three vigil-node agents, one replica per node.
source "$(dirname "$0")/../../scripts/cluster-lib.sh"
vigil_cluster_start "$B" 3 "$W"
trap 'vigil_cluster_stop; rm -rf "$W"' EXIT
job cluster-tmr-kill "placed on node 'worker-1'" --nodes "$VIGIL_NODES" --mode tmr --signal polling \
  --inject-kill 0:400 --deadline-ms 3000
grep -q "replica 0 incarnation 1 placed on node 'worker-2'" "$W/cluster-tmr-kill.log" ||
  { cat "$W/cluster-tmr-kill.log"; fail "the replacement was not placed on another node"; }
echo "ok: the replacement of replica 0 went to another node"

# vigilctl: a bit flip injected at run time through the node agent, while the job runs.
head -c 6000000 /dev/zero | tr '\0' 'w' > "$W/big.bin"
"$R" --unreplicated --workload crc32 < "$W/big.bin" > "$W/want-big.txt"
"$V" run --nodes "$VIGIL_NODES" --mode tmr --signal notify --input "$W/big.bin" \
  --output "$W/ctl.out" > "$W/ctl.log" 2>&1 &
vpid=$!
for _ in $(seq 100); do
  "$B/node/vigilctl" --node 127.0.0.1:7722 status | grep -q running && break
  sleep 0.1
done
"$B/node/vigilctl" --node 127.0.0.1:7722 status
sleep 0.5
"$B/node/vigilctl" --node 127.0.0.1:7722 inject bitflip --group 1 --replica 1 --incarnation 0 --bit 515
wait $vpid || { cat "$W/ctl.log"; fail "vigilctl job failed"; }
grep '^job:' "$W/ctl.log"
cmp -s "$W/want-big.txt" "$W/ctl.out" || fail "vigilctl job: output differs"
grep -q "replica 1 outvoted" "$W/ctl.log" || { cat "$W/ctl.log"; fail "the flip was not detected"; }
echo "ok: vigilctl bitflip detected and repaired"

echo "all vigil-voter jobs passed"
