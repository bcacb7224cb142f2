#!/usr/bin/env bash
# expect.sh STATUS REGEX COMMAND [ARG...]: runs COMMAND, prints its output, and passes only when
# it exits with STATUS (a number, or "nonzero" for any failure) and its standard output and
# error together match REGEX (grep -E). ctest's PASS_REGULAR_EXPRESSION would ignore the exit
# status: this checks both.
set -uo pipefail
want=$1 regex=$2
shift 2
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [[ $want == nonzero ]]; then
  [[ $rc -ne 0 ]] || { echo "FAIL: '$1' exited with 0, expected a failure"; exit 1; }
elif [[ $rc -ne $want ]]; then
  echo "FAIL: '$1' exited with $rc, expected $want"
  exit 1
fi
grep -qE -- "$regex" <<< "$out" || { echo "FAIL: the output does not match '$regex'"; exit 1; }
echo "ok: exit status $rc, output matches '$regex'"
