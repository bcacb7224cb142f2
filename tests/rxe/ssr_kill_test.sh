#!/usr/bin/env bash
# Restartable servers over real verbs: an SSR store, a vigil-node supervising a kv and a lock
# server, and clients that check every answer against their own model while the servers are
# SIGKILLed at random points. Passes only with 0 client-visible errors, 0 lost and 0 duplicated
# operations, and every kill followed by a reply from the restarted server.
# Usage: ssr_kill_test.sh BUILD_DIR [DURATION_S]
set -euo pipefail
B=$1
DURATION=${2:-40}
W=$(mktemp -d)
source "$(dirname "$0")/../../scripts/cluster-lib.sh"
vigil_ssr_start "$B" "$W"
trap 'vigil_ssr_stop; rm -rf "$W"' EXIT
set +e
"$B/bench/vigil-bench" ssr --kv "$VIGIL_KV" --lock "$VIGIL_LOCK" --clients 3 \
  --duration-s "$DURATION" --kill-min-ms 1500 --kill-max-ms 3000 --seed "$RANDOM" \
  --json "$B/ssr-kill.json" 2> "$W/bench.log"
rc=$?
set -e
restarts=$(grep -c "restarting in" "$W/server-node.log" || true)
echo "server restarts seen by the supervisor: $restarts"
if [[ $rc -ne 0 || $restarts -eq 0 ]]; then
  tail -30 "$W/bench.log"; tail -30 "$W/server-node.log"; tail -20 "$W/ssr-store.log"
  echo "FAIL: kill loop (exit $rc)"
  exit 1
fi
grep -E "session .* replaces|recovered" "$W/ssr-store.log" "$W/server-node.log" | tail -3 || true
echo "ssr kill loop passed"
