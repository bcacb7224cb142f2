# A local vigil cluster on one host (sourced by scripts/demo-guest and the rxe tests): N vigil-node
# worker agents as separate processes on 127.0.0.1, ports 7721.., sharing this host's RDMA device.
#   vigil_cluster_start BUILD_DIR N LOGDIR   -> exports VIGIL_NODES=127.0.0.1:7721,...
#   vigil_cluster_stop
# vigil_wait_listening LOG [TENTHS]: waits up to TENTHS/10 s (default 10 s) for a daemon's log to
# say it listens; prints the log if it never does.
vigil_wait_listening() {
  local log=$1 tenths=${2:-100}
  for _ in $(seq "$tenths"); do
    grep -q "listening on port" "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$log"
  echo "$(basename "$log" .log) did not start" >&2
  return 1
}

vigil_cluster_start() {
  local build=$1 n=$2 logdir=$3 i port
  VIGIL_NODE_PIDS=()
  VIGIL_NODES=""
  for ((i = 1; i <= n; i++)); do
    port=$((7720 + i))
    "$build/node/vigil-node" --listen "127.0.0.1:$port" --name "worker-$i" \
      > "$logdir/worker-$i.log" 2>&1 &
    VIGIL_NODE_PIDS+=($!)
    VIGIL_NODES+="${VIGIL_NODES:+,}127.0.0.1:$port"
  done
  for ((i = 1; i <= n; i++)); do vigil_wait_listening "$logdir/worker-$i.log" || return 1; done
  export VIGIL_NODES
}

vigil_cluster_stop() {
  local p
  for p in "${VIGIL_NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${VIGIL_NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  VIGIL_NODE_PIDS=()
}

# The SSR side of the local cluster: vigil-ssr-store on 127.0.0.1:7740 and a vigil-node
# ("server-node", 7730) that supervises a kv server on 7750 and a lock server on 7751.
#   vigil_ssr_start BUILD_DIR LOGDIR   -> exports VIGIL_KV=127.0.0.1:7750 VIGIL_LOCK=127.0.0.1:7751
#   vigil_ssr_stop
vigil_ssr_start() {
  local build=$1 logdir=$2 f
  VIGIL_SSR_PIDS=()
  "$build/ssr-store/vigil-ssr-store" --listen 127.0.0.1:7740 --arena-mib 16 \
    > "$logdir/ssr-store.log" 2>&1 &
  VIGIL_SSR_PIDS+=($!)
  local server="$build/server/vigil-server --store 127.0.0.1:7740"
  "$build/node/vigil-node" --listen 127.0.0.1:7730 --name server-node \
    --restart-backoff-ms 20 --restart-max 1000 --restart-window-s 60 \
    --server "kv=$server --service kv --listen 127.0.0.1:7750" \
    --server "lock=$server --service lock --listen 127.0.0.1:7751" \
    > "$logdir/server-node.log" 2>&1 &
  VIGIL_SSR_PIDS+=($!)
  for f in ssr-store server-node; do vigil_wait_listening "$logdir/$f.log" || return 1; done
  export VIGIL_KV=127.0.0.1:7750 VIGIL_LOCK=127.0.0.1:7751
}

vigil_ssr_stop() {
  local p
  # The node first: its servers stop with it, then the store.
  for p in $(printf '%s\n' "${VIGIL_SSR_PIDS[@]}" | tac); do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  VIGIL_SSR_PIDS=()
}
