#!/usr/bin/env bash
# The cluster tier: the local cluster in network namespaces (scripts/vigil-local) deployed with the
# Ansible playbooks, one step per ctest test (they share the cluster through a ctest fixture):
#   up          namespaces + site.yml: every host ok, the daemons run from the installed package,
#               whose systemd units pass systemd-analyze verify; every port speaks mutual TLS
#               with the certificates the playbook issued (keys 0600): no certificate, or one of
#               the wrong role, is refused
#   tmr         a TMR crc32 job from the voter's namespace, one replica per worker namespace,
#               an injected bit flip out-voted, output equal to the unreplicated run
#   run         vigil-run from the voter's namespace: sha256sum, cksum, sort, gzip as TMR
#               replicas on the workers over polling, sort over notify, gzip over rpc, equal to
#               plain runs; a DMR flip rolled back
#   ssr_kill    the kv and lock servers SIGKILLed at random while model-checking clients run:
#               0 errors, 0 lost, 0 duplicated
#   bench       bench.yml: vigil-bench in the voter's namespace over the RDMA device, its JSON
#               fetched back and holding measured round trips
#   idempotent  site.yml again on a worker: changed=0
#   down        teardown.yml + namespaces removed: no namespace, link, process, package or file left
# Usage: cluster_test.sh STEP BUILD_DIR
set -euo pipefail
STEP=$1
B=$(cd "$2" && pwd)
L=$(cd "$(dirname "$0")/../.." && pwd)/scripts/vigil-local
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
NODES=198.18.1.11:7720,198.18.1.12:7720,198.18.1.13:7720
# The voter host's certificates, issued by site.yml (scripts/vigil-local).
TLS=/etc/vigil/voter/tls
VOTER=(--tls-dir $TLS/voter)
OPERATOR=(--tls-dir $TLS/operator-admin)
CA=${VIGIL_LOCAL_STATE:-/run/vigil-local}/ca  # the cluster CA: clients' certificates come from it
fail() { echo "FAIL: $*"; exit 1; }
# every_host_recap LOG PATTERN: all five hosts' recap lines match PATTERN.
every_host_recap() {  # every_host_recap LOG PATTERN [HOSTS]
  local hosts=${3:-voter w1 w2 w3 ssr} n want
  want=$(wc -w <<< "$hosts")
  n=$(grep -cE "^(${hosts// /|}) +: $2" "$1" || true)
  [[ $n -eq $want ]] || { cat "$1"; fail "$n of $want hosts' recap match '$2'"; }
}

case "$STEP" in
  up)
    "$L" down > /dev/null 2>&1 || true  # an earlier run that was interrupted
    "$L" up "$B" | tee "$W/up.log"
    every_host_recap "$W/up.log" "ok=[0-9]+ +changed=[0-9]+ +unreachable=0 +failed=0"
    [[ $(pgrep -cx vigil-node) -eq 3 ]] || fail "expected 3 vigil-node processes: $(pgrep -ax vigil-node)"
    pgrep -x vigil-ssr-store > /dev/null || fail "vigil-ssr-store is not running"
    for n in w1 w2 w3; do
      ip netns pids "vigil-$n" | xargs -r ps -o comm= -p | grep -qx vigil-node ||
        fail "no vigil-node in namespace vigil-$n"
    done
    "$L" status > "$W/status"
    grep -q "supervised server" "$W/status" || { cat "$W/status"; fail "w1 reports no supervised servers"; }
    grep -q "^  ssr: pid [0-9]* /usr/bin/vigil-ssr-store" "$W/status" ||
      { cat "$W/status"; fail "the store does not run from the package"; }
    # The package's systemd units, now installed (the daemons here run directly: no systemd):
    # every directive known, every command present.
    systemd-analyze verify vigil-node.service vigil-ssr-store.service > "$W/units" 2>&1 ||
      { cat "$W/units"; fail "systemd-analyze verify failed"; }
    [[ ! -s $W/units ]] || { cat "$W/units"; fail "systemd-analyze verify reported problems"; }
    # TLS: every daemon was given its certificate; keys are private; a caller without a
    # certificate, or with one whose role may not call the method, is refused.
    for d in /etc/vigil/w1/tls/node /etc/vigil/w1/tls/server-kv /etc/vigil/w1/tls/server-lock \
             /etc/vigil/ssr/tls/store $TLS/voter $TLS/operator-admin; do
      [[ $(stat -c %a "$d/key.pem") == 600 ]] || fail "$d/key.pem has mode $(stat -c %a "$d/key.pem")"
      openssl verify -CAfile "$d/ca.pem" "$d/cert.pem" > /dev/null || fail "$d/cert.pem does not verify"
    done
    grep -q -- "--tls-dir /etc/vigil/w1/tls/node" /etc/vigil/w1/vigil-node ||
      fail "vigil-node runs without TLS: $(cat /etc/vigil/w1/vigil-node)"
    "$L" exec voter vigilctl "${OPERATOR[@]}" --node 198.18.1.11:7720 status > /dev/null ||
      fail "the operator's certificate was refused by vigil-node"
    # A certificate of the right role from another CA: the handshake fails.
    vigilctl certs init "$W/rogue-ca" > /dev/null
    vigilctl certs issue "$W/rogue-ca" operator admin --out "$W/rogue" > /dev/null
    if "$L" exec voter vigilctl --tls-dir "$W/rogue" --node 198.18.1.11:7720 --timeout-ms 2000 \
         status > "$W/rogue.log" 2>&1; then
      fail "vigil-node answered a certificate from another CA"
    fi
    # No certificate at all: vigilctl refuses plaintext to a routable address itself.
    if "$L" exec voter vigilctl --node 198.18.1.11:7720 --timeout-ms 2000 status > "$W/plain" 2>&1; then
      fail "vigilctl spoke plaintext to vigil-node"
    fi
    vigilctl certs issue "$CA" client 9 --out "$W/client-9" > /dev/null
    if "$L" exec voter vigilctl --tls-dir "$W/client-9" --store 198.18.1.20:7740 store > "$W/client" 2>&1; then
      fail "the store answered a client's certificate"
    fi
    grep -q "PERMISSION_DENIED\|may not call" "$W/client" || { cat "$W/client"; fail "no refusal naming the role"; }
    # The supervised servers serve a client over TLS (certificate issued from the cluster CA).
    vigilctl certs issue "$CA" client 7 --out "$W/client-7" > /dev/null
    "$L" exec voter vigil-client --tls-dir "$W/client-7" --client-id 7 --deadline-ms 60000 \
      --server 198.18.1.11:7750 'put k v' 'get k' > "$W/kv.log" 2>&1 ||
      { cat "$W/kv.log" /etc/vigil/w1/servers.conf; tail -40 /var/log/vigil/w1/vigil-node.log; fail "kv client failed"; }
    grep -q "get k -> v" "$W/kv.log" || { cat "$W/kv.log"; fail "kv did not answer 'v'"; }
    echo "PASS: cluster deployed with site.yml, mutual TLS on every port"
    ;;
  tmr)
    head -c 3000000 /dev/zero | tr '\0' 'n' > "$W/in.bin"
    /usr/libexec/vigil/vigil-replica --unreplicated --workload crc32 < "$W/in.bin" > "$W/want"
    "$L" exec voter vigil-voter "${VOTER[@]}" run --listen 198.18.1.10:0 --nodes "$NODES" --mode tmr \
      --signal polling --input "$W/in.bin" --output "$W/got" --inject-bitflip 1:2 > "$W/job.log" 2>&1 ||
      { cat "$W/job.log"; fail "TMR job failed"; }
    grep -E "placed on node|outvoted|^job:" "$W/job.log"
    cmp -s "$W/want" "$W/got" || { cat "$W/job.log"; fail "TMR output differs from the unreplicated run"; }
    for n in w1 w2 w3; do
      grep -q "placed on node '$n'" "$W/job.log" || fail "no replica was placed on worker $n"
    done
    grep -q "outvoted" "$W/job.log" || fail "the bit flip was not out-voted"
    echo "PASS: TMR job across namespaces"
    ;;
  run)
    # vigil-run from the voter's namespace, replicas on the three workers (the package's
    # vigil-node starts vigil-replica --workload exec), every method: outputs equal plain runs.
    # The job's directory (the sandbox's root) is nobody's: the executor, which vigil-run (root)
    # starts as the root's owner, carries out the agreed calls as that user.
    export LC_ALL=C
    chmod 0711 "$W"  # (nobody passes through, lists nothing)
    R="$W/run" && mkdir -m 0700 "$R" && chown nobody "$R"
    awk 'BEGIN { srand(11); for (i = 0; i < 100000; i++) printf "%05d vigil %d\n", int(rand() * 100000), i }' \
      > "$R/in.txt"
    # Every program over polling; notify and rpc with one program each: the rxe tier's
    # bench_run_rxe checks every program x method x mode against plain runs on one host, and
    # here each run costs ~12 s of the emulated guest.
    for run in "polling sha256sum" "polling cksum $R/in.txt" "polling sort --parallel=1" \
               "polling gzip -c -n" "notify sort --parallel=1" "rpc gzip -c -n"; do
      read -r signal prog <<< "$run"
      read -ra argv <<< "$prog"
      "${argv[@]}" < "$R/in.txt" > "$W/want"
      "$L" exec voter vigil-run "${VOTER[@]}" --report --root "$R" --listen 198.18.1.10:0 --nodes "$NODES" --mode tmr \
        --signal "$signal" -- "${argv[@]}" < "$R/in.txt" > "$W/got" 2> "$W/run.log" ||
        { cat "$W/run.log"; fail "vigil-run $signal $prog failed"; }
      cmp -s "$W/want" "$W/got" || { cat "$W/run.log"; fail "vigil-run $signal $prog: output differs"; }
      grep '^vigil-run:' "$W/run.log"
    done
    grep -q "executor process: uid $(id -u nobody) (nobody)" "$W/run.log" ||
      { cat "$W/run.log"; fail "vigil-run's executor did not run as nobody"; }
    "$L" exec voter vigil-run "${VOTER[@]}" --report --listen 198.18.1.10:0 --nodes "$NODES" --mode dmr \
      --signal notify --inject-flip 1:30 -- sha256sum < "$R/in.txt" > "$W/got" 2> "$W/run.log" ||
      { cat "$W/run.log"; fail "vigil-run with a flip failed"; }
    sha256sum < "$R/in.txt" | cmp -s - "$W/got" || fail "DMR vigil-run with a flip: output differs"
    grep -q "1 mismatches, 1 rollbacks" "$W/run.log" || { cat "$W/run.log"; fail "the flip was not rolled back"; }
    echo "PASS: vigil-run across namespaces, every method"
    ;;
  ssr_kill)
    log=/var/log/vigil/w1/vigil-node.log
    before=$(grep -c "restarting in" "$log" || true)
    set +e
    # The clients act as clients 1-3, with certificates issued here from the cluster CA (as an
    # operator issues them); the bench itself probes the servers' Health as the operator.
    for i in 1 2 3; do
      vigilctl certs issue "$CA" client $i --out "$W/client-$i" > /dev/null
    done
    "$L" exec voter vigil-bench ssr "${OPERATOR[@]}" --kv 198.18.1.11:7750 --lock 198.18.1.11:7751 \
      --client-tls-dir "$W/client-1" --client-tls-dir "$W/client-2" --client-tls-dir "$W/client-3" \
      --clients 3 --duration-s "${VIGIL_SSR_KILL_S:-40}" --kill-min-ms 1500 --kill-max-ms 3000 \
      --seed "$RANDOM" --json "$B/ssr-kill.json" 2> "$W/bench.log"
    rc=$?
    set -e
    restarts=$(($(grep -c "restarting in" "$log" || true) - before))
    echo "server restarts seen by the supervisor: $restarts"
    if [[ $rc -ne 0 || $restarts -eq 0 ]]; then
      tail -30 "$W/bench.log"; tail -30 "$log"; tail -20 /var/log/vigil/ssr/vigil-ssr-store.log
      fail "kill loop (exit $rc)"
    fi
    echo "PASS: ssr kill loop across namespaces"
    ;;
  bench)
    VIGIL_LOCAL_RESULTS=$W/results "$L" bench signal --methods polling --modes dmr --sizes 64 \
      --iters 300 --warmup 30 --workloads none --perftest never | tee "$W/bench.log"
    /usr/bin/python3 - "$W/results/voter/vigil-bench.json" <<'PY' || fail "bench.yml results"
import json, sys
d = json.load(open(sys.argv[1]))
env = d["environment"]
assert d["benchmark"] == "signal", d["benchmark"]
assert "FAKE" not in env["device"], env["device"]
rtt = d["round_trips"][0]["results"][0]["vigil_rtt"]
assert rtt["count"] == 300 and 0 < rtt["p50_us"] <= rtt["max_us"], rtt
print(f"fetched: {d['round_trips'][0]['benchmark']} on {env['device']}: p50 {rtt['p50_us']} us over {rtt['count']} round trips")
PY
    echo "PASS: bench.yml ran vigil-bench and fetched its results"
    ;;
  idempotent)
    # A worker with its node, its two supervised servers and their certificates (46 tasks, the
    # most of any host): the others run a subset of the same tasks with other names, and each
    # host's take minutes in the emulated guest (ssr and w1 together: 8 minutes). scripts/demo
    # runs site.yml again on every host.
    "$L" deploy --limit w1 | tee "$W/deploy.log"
    every_host_recap "$W/deploy.log" "ok=[0-9]+ +changed=0 +unreachable=0 +failed=0" "w1"
    echo "PASS: a second site.yml run changed nothing (w1)"
    ;;
  down)
    "$L" down
    left=$(ip netns list | grep -c '^vigil-' || true)
    [[ $left -eq 0 ]] || fail "$left namespaces left after down"
    ip -o link show | grep -E ' (vigil-br0|vl-[a-z0-9-]+)[:@]' && fail "links left after down"
    pgrep -a '^vigil-' && fail "vigil processes left after down"
    dpkg-query -W -f='${Status}' vigil 2>/dev/null | grep -q "install ok installed" &&
      fail "the vigil package is still installed"
    for f in /etc/vigil /etc/default/vigil-node /etc/default/vigil-ssr-store /var/log/vigil /run/vigil \
             /var/cache/vigil /var/lib/vigil /etc/security/limits.d/90-vigil-memlock.conf \
             "${VIGIL_LOCAL_STATE:-/run/vigil-local}"; do
      [[ -e $f ]] && fail "$f left after down"
    done
    echo "PASS: down left nothing behind"
    ;;
  *) fail "unknown step '$STEP'" ;;
esac
