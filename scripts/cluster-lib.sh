# A local vigil cluster on one host, all on 127.0.0.1 (sourced by tests/rxe/voter_job_test.sh; its
# daemon start-up wait also by scripts/vigil-local): N vigil-node worker agents as separate
# processes, ports 7721.., sharing this host's RDMA device.
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
    "$build/node/vigil-node" --insecure --listen "127.0.0.1:$port" --name "worker-$i" --exec-allow /usr/bin/ \
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

