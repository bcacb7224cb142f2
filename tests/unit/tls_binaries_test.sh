#!/usr/bin/env bash
# The shipped binaries honour their TLS flags (a component whose options were made before the
# flags were parsed once listened in plaintext): vigil-node started with --tls-dir serves an
# operator's certificate, refuses a client's (PERMISSION_DENIED naming the role), a certificate
# from another CA and a plaintext caller; without any TLS flag it refuses to listen at all (on
# loopback: --insecure is required), and with --insecure on a routable address, naming it.
# Usage: tls_binaries_test.sh BUILD_DIR
set -euo pipefail
B=$1
W=$(mktemp -d)
node_pid=
trap '[[ -n $node_pid ]] && kill $node_pid 2>/dev/null; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; [[ -f $W/node.log ]] && cat "$W/node.log"; exit 1; }
ctl=$B/node/vigilctl
"$ctl" certs init "$W/ca" > /dev/null
"$ctl" certs init "$W/other-ca" > /dev/null
for id in "node w1" "operator admin" "client 42"; do
  read -r role name <<< "$id"
  "$ctl" certs issue "$W/ca" "$role" "$name" --out "$W/$role" > /dev/null
done
"$ctl" certs issue "$W/other-ca" operator admin --out "$W/stranger" > /dev/null

"$B/node/vigil-node" --listen 127.0.0.1:0 --name w1 --tls-dir "$W/node" > "$W/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do grep -q "listening on port" "$W/node.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$W/node.log" | head -1)
[[ -n $port ]] || fail "vigil-node did not start"
grep -q "in plaintext" "$W/node.log" && fail "vigil-node listens in plaintext despite --tls-dir"
target=127.0.0.1:$port

"$ctl" --tls-dir "$W/operator" --node "$target" status > "$W/ok" 2>&1 ||
  { cat "$W/ok"; fail "the operator's certificate was refused"; }
grep -q "replica processes" "$W/ok" || { cat "$W/ok"; fail "no status from vigil-node"; }
if "$ctl" --tls-dir "$W/client" --node "$target" status > "$W/client.log" 2>&1; then
  fail "a client's certificate was served"
fi
grep -q "vigil://client/42 (role client) may not call" "$W/client.log" ||
  { cat "$W/client.log"; fail "the refusal does not name the role"; }
for who in stranger plaintext; do
  flags=(--tls-dir "$W/stranger")
  [[ $who == plaintext ]] && flags=(--insecure)
  if "$ctl" "${flags[@]}" --timeout-ms 2000 --node "$target" status > "$W/$who.log" 2>&1; then
    fail "vigil-node answered a $who caller"
  fi
done
kill "$node_pid"
wait "$node_pid" 2>/dev/null || true
node_pid=

# No TLS flag: refused before listening, even on loopback, saying what to pass.
if "$B/node/vigil-node" --listen 127.0.0.1:0 > "$W/noflag.log" 2>&1; then
  fail "vigil-node listened in plaintext without --insecure"
fi
grep -q "'127.0.0.1:0' without TLS: no --tls-dir .*or pass --insecure" "$W/noflag.log" ||
  { cat "$W/noflag.log"; fail "no reason given without --insecure"; }
# --insecure, a routable address: refused before listening, naming it.
if "$B/node/vigil-node" --insecure --listen 198.18.0.1:7720 > "$W/routable.log" 2>&1; then
  fail "vigil-node listened in plaintext on a routable address"
fi
grep -q "'198.18.0.1:7720' without TLS (--insecure): plaintext is allowed on loopback" "$W/routable.log" ||
  { cat "$W/routable.log"; fail "no reason given"; }
echo "vigil-node: TLS flags honoured, wrong role / other CA / plaintext refused, plaintext without --insecure or off loopback refused"
