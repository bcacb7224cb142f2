#!/usr/bin/env bash
# Restartable servers over real verbs, on the local cluster (scripts/vigil-local): the SSR store in
# its namespace, worker w1's vigil-node supervising a kv and a lock server, and clients in the
# voter's namespace that check every answer against their own model while the servers are
# SIGKILLed at random points. Passes only with 0 client-visible errors, 0 lost and 0 duplicated
# operations, and every kill followed by a reply from the restarted server.
# Usage: ssr_kill_test.sh BUILD_DIR [DURATION_S]
set -euo pipefail
B=$(cd "$1" && pwd)
DURATION=${2:-40}
L=$(cd "$(dirname "$0")/../.." && pwd)/scripts/vigil-local
W=$(mktemp -d)
export VIGIL_LOCAL_STATE=$W/state
trap '"$L" down >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$L" up "$B" > "$W/up.log" || { cat "$W/up.log"; exit 1; }
set +e
"$L" exec voter "$B/bench/vigil-bench" ssr --kv 198.18.1.11:7750 --lock 198.18.1.11:7751 \
  --clients 3 --duration-s "$DURATION" --kill-min-ms 1500 --kill-max-ms 3000 --seed "$RANDOM" \
  --json "$B/ssr-kill.json" 2> "$W/bench.log"
rc=$?
set -e
restarts=$(grep -c "restarting in" "$VIGIL_LOCAL_STATE/w1.log" || true)
echo "server restarts seen by the supervisor: $restarts"
if [[ $rc -ne 0 || $restarts -eq 0 ]]; then
  tail -30 "$W/bench.log"; tail -30 "$VIGIL_LOCAL_STATE/w1.log"
  tail -20 "$VIGIL_LOCAL_STATE/ssr-store.log"
  echo "FAIL: kill loop (exit $rc)"
  exit 1
fi
grep -E "session .* replaces|recovered" "$VIGIL_LOCAL_STATE/ssr-store.log" \
  "$VIGIL_LOCAL_STATE/w1.log" | tail -3 || true
echo "ssr kill loop passed"
