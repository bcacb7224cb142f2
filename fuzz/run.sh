#!/usr/bin/env bash
# run.sh HARNESS SEEDS SECONDS [SEED]: runs one libFuzzer harness for SECONDS from the seed corpus SEEDS
# (read only; new inputs go to a scratch corpus), under the ASan + UBSan it was built with. Fails
# on any crash, leak, timeout or sanitizer report, keeping the input that caused it next to the
# harness (crash-*, leak-*, timeout-*): add it to SEEDS once fixed, as a regression case.
set -uo pipefail
# The mutation seed defaults to 1 so that CI explores the same inputs each run (a red fuzz tier
# is then a regression, not luck); pass 0 for a random seed when hunting for new bugs.
harness=$1 seeds=$2 seconds=$3 seed=${4:-1}
name=$(basename "$harness")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$seeds"
cd "$(dirname "$harness")"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  "$harness" -seed="$seed" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$PWD/$name-" "$work" "$seeds" > "$work.log" 2>&1
rc=$?
grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::new_units_added)|INFO: seed corpus" "$work.log"
if [[ $rc -ne 0 ]]; then
  tail -60 "$work.log"
  echo "FAIL: $name exited with $rc; the input is kept as $PWD/$name-*"
  rm -f "$work.log"
  exit 1
fi
rm -f "$work.log"
echo "ok: $name ran ${seconds} s (seed $seed) with no crash, leak or sanitizer report"
