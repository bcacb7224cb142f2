# A local vigil cluster on one host (sourced by scripts/demo-guest and the rxe tests): N vigil-node
# worker agents as separate processes on 127.0.0.1, ports 7721.., sharing this host's RDMA device.
#   vigil_cluster_start BUILD_DIR N LOGDIR   -> exports VIGIL_NODES=127.0.0.1:7721,...
#   vigil_cluster_stop
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
  for ((i = 1; i <= n; i++)); do
    for _ in $(seq 100); do
      grep -q "listening on port" "$logdir/worker-$i.log" 2>/dev/null && break
      sleep 0.1
    done
    grep -q "listening on port" "$logdir/worker-$i.log" ||
      { cat "$logdir/worker-$i.log"; echo "worker-$i did not start" >&2; return 1; }
  done
  export VIGIL_NODES
}

vigil_cluster_stop() {
  local p
  for p in "${VIGIL_NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${VIGIL_NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  VIGIL_NODE_PIDS=()
}
