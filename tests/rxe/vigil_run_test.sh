#!/usr/bin/env bash
# vigil-run end to end over real verbs: unmodified Debian programs as vigil-replica processes
# (this host, then three vigil-node agents), every system call voted. Their stdout and output
# files must be byte-identical to a plain run for every mode and signalling method; injected
# memory and register flips must be detected (DMR: rolled back, re-executed) and
# out-voted (TMR: replaced, the replacement catching up from the voter's log);
# an unsupported call must stop the run naming it. Usage: vigil_run_test.sh BUILD_DIR
set -euo pipefail
B=$1
RUN=$B/run/vigil-run
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# The job's files are in $W (mode 0700: not readable by every user), the sandbox's root. Run as
# root, vigil-run starts its executor as the root's owner: nobody, here.
# The plain runs (the reference) run as that user too.
AS=()
if [[ $(id -u) == 0 ]]; then
  chown nobody "$W"
  AS=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
fi
fail() { echo "FAIL: $*"; exit 1; }
export LC_ALL=C

# 2 MB of deterministic text (awk's own generator, fixed seed).
awk 'BEGIN { srand(7); for (i = 0; i < 60000; i++) printf "%05d line %d %s\n", int(rand() * 100000), i, (i % 7 ? "other" : "seven") }' \
  > "$W/input.txt"

# check NAME EXPECT_LOG [VIGIL-RUN ARGS] -- PROGRAM...: the replicated run's stdout, stderr and
# exit code equal the plain run's; the report line is printed; the log holds EXPECT_LOG.
check() {
  local name=$1 expect=$2; shift 2
  local args=()
  while [[ $1 != -- ]]; do args+=("$1"); shift; done
  shift
  local rc=0 want_rc=0
  "${AS[@]}" "$@" < "$W/input.txt" > "$W/$name.want" 2> "$W/$name.want-err" || want_rc=$?
  "$RUN" --insecure --report --root "$W" "${args[@]}" -- "$@" < "$W/input.txt" > "$W/$name.out" 2> "$W/$name.log" || rc=$?
  grep '^vigil-run:' "$W/$name.log" || true
  [[ $rc == "$want_rc" ]] || { cat "$W/$name.log"; fail "$name: exit code $rc, plain run $want_rc"; }
  cmp -s "$W/$name.want" "$W/$name.out" || { cat "$W/$name.log"; fail "$name: stdout differs"; }
  grep -q ' completed in ' "$W/$name.log" || { cat "$W/$name.log"; fail "$name: no completed report"; }
  if [[ -n $expect ]] && ! grep -q "$expect" "$W/$name.log"; then
    cat "$W/$name.log"; fail "$name: log lacks '$expect'"
  fi
  echo "ok: $name ($(wc -c < "$W/$name.out") bytes)"
}

# Every mode and method with sha256sum (stdin), and sort (DMR) and gzip (TMR) with a file
# argument. (bench_run_rxe, in this tier too, runs sha256sum, cksum, sort and gzip over every
# method and mode over rxe and checks every output against the plain run.)
for mode in dmr tmr; do
  for signal in polling notify rpc; do
    check "$mode-$signal-sha256sum" "" --mode "$mode" --signal "$signal" -- sha256sum
  done
done
check dmr-notify-sort "" --mode dmr --signal notify -- sort --parallel=1 "$W/input.txt"
check tmr-rpc-gzip "" --mode tmr --signal rpc -- gzip -c -n "$W/input.txt"

if [[ $(id -u) == 0 ]]; then
  grep -q "executor process: uid $(id -u nobody) (nobody)" "$W/dmr-polling-sha256sum.log" ||
    { cat "$W/dmr-polling-sha256sum.log"; fail "the executor did not run as nobody"; }
fi

# An output file, written once by the voter: equal to the plain run's.
sort --parallel=1 -o "$W/sorted.want" "$W/input.txt"
check tmr-sort-o "" --mode tmr -- sort --parallel=1 -o "$W/sorted.out" "$W/input.txt"
cmp -s "$W/sorted.want" "$W/sorted.out" || fail "sort -o: output file differs"
[[ $(id -u) != 0 || $(stat -c %U "$W/sorted.out") == nobody ]] ||
  fail "sort -o: the output file belongs to $(stat -c %U "$W/sorted.out"), not the executor's nobody"
echo "ok: sort -o output file equals the plain run's"

# Exit codes and stderr pass through.
check dmr-missing-file "" --mode dmr -- cat /nonexistent/vigil-run-test
grep -qxF "$(cat "$W/dmr-missing-file.want-err")" "$W/dmr-missing-file.log" ||
  { cat "$W/dmr-missing-file.log"; fail "cat's error message differs"; }
echo "ok: cat's exit code and error message pass through"

# Memory flips in the data a replica reads: DMR detects and re-executes, TMR out-votes.
check dmr-notify-flip "rolling back to the checkpoint" --mode dmr --signal notify \
  --inject-flip 1:30 -- sha256sum
grep -q "1 mismatches, 1 rollbacks" "$W/dmr-notify-flip.log" || fail "DMR flip not counted"
check tmr-polling-flip "outvoted at event" --mode tmr --signal polling --inject-flip 2:30 -- \
  gzip -c -n "$W/input.txt"
grep -q "1 mismatches, 0 rollbacks, 1 replacements" "$W/tmr-polling-flip.log" ||
  fail "TMR flip not counted"
# The replacement of a replica out-voted early restarts the program and catches up from the
# voter's log of agreed calls, then votes again (dd with 64-byte blocks: thousands of calls).
head -c 131072 "$W/input.txt" > "$W/small.txt"
check tmr-notify-catch-up "1 caught up" --mode tmr --signal notify --inject-flip 0:40 -- \
  dd if="$W/small.txt" bs=64 status=none
grep -q "1 mismatches, 0 rollbacks, 1 replacements, 1 caught up" "$W/tmr-notify-catch-up.log" ||
  fail "TMR catch-up not counted"
# A flip in the result register (rax) of a call: the replica goes another way, out-voted.
check tmr-rpc-result-flip "flipped bit 5 of the result register" --mode tmr --signal rpc \
  --inject-flip 1:34 --flip-target result --flip-bit 5 -- sha256sum
grep -q "1 mismatches, 0 rollbacks, 1 replacements" "$W/tmr-rpc-result-flip.log" ||
  fail "TMR result-register flip not counted"

# A flip in an argument register (rdi) at a call, through ptrace: the call is made again with
# its first argument changed, and the vote on it out-votes the replica.
check tmr-polling-rdi-flip "flipped bit 5 of rdi" --mode tmr --signal polling \
  --inject-flip 2:40 --flip-target rdi --flip-bit 5 -- sha256sum
grep -q "1 mismatches, 0 rollbacks, 1 replacements" "$W/tmr-polling-rdi-flip.log" ||
  fail "TMR register flip not counted"
# The instruction pointer: the program resumes elsewhere; whatever it does differs.
check tmr-notify-rip-flip "flipped bit 5 of rip" --mode tmr --signal notify \
  --inject-flip 2:40 --flip-target rip --flip-bit 5 -- sha256sum
grep -q "0 rollbacks, 1 replacements" "$W/tmr-notify-rip-flip.log" ||
  fail "TMR instruction pointer flip not handled by a replacement"

# A replica process that dies at a call (TMR: the others go on, it is replaced and catches up)
# or stops sending (DMR: found by the deadline, replaced, both restart from the checkpoint).
check tmr-polling-crash "" --mode tmr --signal polling --inject-flip 1:40 --flip-target crash -- \
  sha256sum
grep -q "the replica crashes at" "$W/tmr-polling-crash.log" || fail "TMR crash not injected"
grep -q ", 1 replacements" "$W/tmr-polling-crash.log" || fail "TMR crash: no replacement"
check dmr-notify-hang "no event within the 2000 ms deadline" --mode dmr --signal notify \
  --deadline-ms 2000 --inject-flip 0:40 --flip-target hang -- sha256sum
grep -q "1 rollbacks, 1 replacements" "$W/dmr-notify-hang.log" || fail "DMR hang not counted"

# An unsupported call stops the run with its name and exit code 125.
rc=0
"$RUN" --insecure --mode dmr -- sh -c 'true | true' > "$W/pipe.out" 2> "$W/pipe.log" || rc=$?
[[ $rc == 125 ]] || { cat "$W/pipe.log"; fail "unsupported call: exit code $rc, want 125"; }
grep -q "the program called pipe" "$W/pipe.log" || { cat "$W/pipe.log"; fail "pipe not named"; }
echo "ok: an unsupported call stops the run: $(grep -o 'the program called pipe[^:]*' "$W/pipe.log" | head -1)"
rc=0
"$RUN" --insecure -- /nonexistent/program > /dev/null 2> "$W/missing.log" || rc=$?
[[ $rc == 127 ]] && grep -q "cannot execute '/nonexistent/program'" "$W/missing.log" ||
  { cat "$W/missing.log"; fail "missing program: exit code $rc"; }
echo "ok: a missing program: exit code 127"

# On a local cluster: three vigil-node agents, one replica per node.
source "$(dirname "$0")/../../scripts/cluster-lib.sh"
vigil_cluster_start "$B" 3 "$W"
trap 'vigil_cluster_stop; rm -rf "$W"' EXIT
for signal in polling notify rpc; do
  check "cluster-tmr-$signal-sha256sum" "" --nodes "$VIGIL_NODES" --mode tmr --signal "$signal" -- sha256sum
done
check cluster-tmr-flip "outvoted at event" --nodes "$VIGIL_NODES" --mode tmr --inject-flip 0:30 -- \
  cksum "$W/input.txt"
echo "all vigil-run jobs passed"
