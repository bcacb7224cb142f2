#!/usr/bin/env bash
# The SSR store down for a minute, over real verbs: a supervised kv server (vigil-node) whose
# store is SIGKILLed and restarted on the same --arena-file after VIGIL_STORE_OUTAGE_S (60) s.
# The server fails stop (exit 75) and is restarted for as long as the store is down, without the
# node giving up on it; model-checking kv clients running across the outage see no error, and no
# lost or duplicated operation (their calls are suspended until the store is back).
# Also: a second store on the same arena file is refused, naming the first one's pid.
# Usage: ssr_outage_test.sh BUILD_DIR
set -euo pipefail
B=$1
OUTAGE_S=${VIGIL_STORE_OUTAGE_S:-60}
W=$(mktemp -d)
source "$(dirname "$0")/../../scripts/cluster-lib.sh"
fail() {
  for f in "$W"/*.log; do echo "--- $(basename "$f")"; tail -25 "$f"; done
  echo "FAIL: $*"
  exit 1
}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
STORE=127.0.0.1:7745 NODE=127.0.0.1:7746 KV=127.0.0.1:7747

start_store() {  # start_store LOG
  "$B/ssr-store/vigil-ssr-store" --insecure --listen $STORE --arena-mib 8 \
    --arena-file "$W/arena" > "$1" 2>&1 &
  store_pid=$!
  pids+=($store_pid)
  vigil_wait_listening "$1" 600 || fail "vigil-ssr-store did not start"
}

start_store "$W/store-1.log"
# One store per arena file: the second is refused, naming the first.
if "$B/ssr-store/vigil-ssr-store" --insecure --listen 127.0.0.1:0 --arena-mib 8 \
    --arena-file "$W/arena" > "$W/second.log" 2>&1; then
  fail "a second store on the same arena file started"
fi
grep -q "in use by another SSR store (pid $store_pid)" "$W/second.log" ||
  { cat "$W/second.log"; fail "the second store's refusal does not name pid $store_pid"; }
echo "ok: a second store on the arena file is refused, naming pid $store_pid"

"$B/node/vigil-node" --insecure --listen $NODE --name outage --restart-max 3 --restart-max-backoff-ms 2000 \
  --server "kv=$B/server/vigil-server --insecure --service kv --listen $KV --store $STORE" \
  > "$W/node.log" 2>&1 &
pids+=($!)
vigil_wait_listening "$W/node.log" 600 || fail "vigil-node did not start"
echo "vigil-node up, supervising kv on $KV"

# Model-checking kv clients (vigil-bench ssr --no-kill: every answer predicted, lost and duplicated
# operations counted) run across the outage; a call may stay suspended through all of it.
RUN_S=$((OUTAGE_S + 60))
"$B/bench/vigil-bench" ssr --insecure --kv $KV --no-kill --clients 2 --duration-s $RUN_S \
  --call-deadline-ms $(( (OUTAGE_S + 300) * 1000 )) --seed 5 --json "$W/clients.json" \
  > "$W/clients.log" 2>&1 &
clients=$!
sleep 15
kill -KILL "$store_pid"
wait "$store_pid" 2>/dev/null || true
echo "store SIGKILLed; down for $OUTAGE_S s"
sleep "$OUTAGE_S"
start_store "$W/store-2.log"
echo "store back on the same arena file"
wait $clients || fail "the clients saw errors, lost or duplicated operations across the outage"
/usr/bin/python3 - "$W/clients.json" <<'PY' || fail "clients' results"
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
assert r["ops"] > 0 and r["client_visible_errors"] == 0 and r["lost"] == 0 and r["duplicated"] == 0, r
print(f"ok: {r['ops']} kv operations across the outage: 0 errors, 0 lost, 0 duplicated; "
      f"longest suspension {r['max_suspended_ms']:.0f} ms")
PY
tempfails=$(grep -c "exited with status 75" "$W/node.log" || true)
echo "server restarts while the store was down (exit 75, not counted): $tempfails"
[[ $tempfails -ge 1 ]] || { cat "$W/node.log"; fail "the server never failed stop on the dead store"; }
if grep -q "not restarting" "$W/node.log"; then
  cat "$W/node.log"; fail "the node gave up on its server during a store outage"
fi
echo "all store outage checks passed"
