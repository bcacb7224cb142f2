#!/usr/bin/env bash
# The local cluster in network namespaces (scripts/vigil-local): a TMR job from the voter's
# namespace with one replica on each worker namespace and an injected bit flip, the kv/lock kill
# loop across namespaces, then `down` must leave no namespace, link or process behind.
# Usage: local_cluster_test.sh BUILD_DIR
set -euo pipefail
B=$(cd "$1" && pwd)
L=$(cd "$(dirname "$0")/../.." && pwd)/scripts/vigil-local
W=$(mktemp -d)
export VIGIL_LOCAL_STATE=$W/state
fail() { echo "FAIL: $*"; "$L" status || true; exit 1; }
trap '"$L" down >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$L" up "$B"
"$L" status > "$W/status"
cat "$W/status"
grep -q "w1: pid .* running" "$W/status" || fail "w1 not running"
grep -q "supervised server" "$W/status" || fail "w1 reports no supervised servers"

head -c 3000000 /dev/zero | tr '\0' 'n' > "$W/in.bin"
"$B/node/vigil-replica" --unreplicated --workload crc32 < "$W/in.bin" > "$W/want"
"$L" exec voter "$B/voter/vigil-voter" run --listen 198.18.1.10:0 \
  --nodes 198.18.1.11:7720,198.18.1.12:7720,198.18.1.13:7720 --mode tmr --signal polling \
  --input "$W/in.bin" --output "$W/got" --inject-bitflip 1:2 > "$W/job.log" 2>&1 ||
  { cat "$W/job.log"; fail "TMR job failed"; }
grep '^job:' "$W/job.log"
cmp -s "$W/want" "$W/got" || { cat "$W/job.log"; fail "TMR output differs from the unreplicated run"; }
grep -q "placed on node 'w2'" "$W/job.log" || fail "replicas were not spread over the worker namespaces"
grep -q "outvoted" "$W/job.log" || fail "the bit flip was not out-voted"
echo "ok: TMR job across namespaces"

"$L" exec voter "$B/bench/vigil-bench" --log-level warn ssr --kv 198.18.1.11:7750 \
  --lock 198.18.1.11:7751 --clients 2 --duration-s 15 --kill-min-ms 2000 --kill-max-ms 3000 |
  tee "$W/kill.log" | sed -n '/client(s) per service/,$p'
grep -q "^PASS" "$W/kill.log" || fail "kill loop across namespaces"
echo "ok: kill loop across namespaces"

"$L" down
left=$(ip netns list | grep -c '^vigil-' || true)
[[ $left -eq 0 ]] || fail "$left namespaces left after down"
ip link show vigil-br0 >/dev/null 2>&1 && fail "bridge left after down"
pgrep -f "$B/(node|server|ssr-store)/vigil-" >/dev/null && fail "vigil processes left after down"
echo "local cluster test passed"
