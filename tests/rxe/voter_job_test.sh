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

echo "all vigil-voter jobs passed"
