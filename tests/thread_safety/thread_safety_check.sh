#!/usr/bin/env bash
# Checks the concurrency rules written as annotations (common/thread_annotations.h): every source
# file that uses them is compiled with clang's -Wthread-safety analysis (syntax only, with the
# build's own flags from compile_commands.json) and any finding fails the check. First it proves
# that the check can fail: violation.cc breaks three rules and each must be reported.
# Usage: thread_safety_check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
S=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
CLANG=${VIGIL_CLANG:-$(command -v clang++-16 || command -v clang++ || true)}
[[ -n $CLANG ]] || { echo "FAIL: no clang++ (clang-16 is one of scripts/lib.sh's packages)"; exit 1; }
CHECK=(-fsyntax-only -Wno-everything -Wthread-safety -Werror=thread-safety)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# The compile command of FILE in this build, for clang: the compiler swapped, no output file.
command_for() {
  /usr/bin/python3 - "$B/compile_commands.json" "$1" "$CLANG" <<'PY'
import json, shlex, sys
db, path, clang = sys.argv[1:]
for e in json.load(open(db)):
    if e["file"] == path:
        args = e.get("arguments") or shlex.split(e["command"])
        out, skip = [clang], False
        for a in args[1:]:
            if skip: skip = False; continue
            if a in ("-o", "-c"): skip = a == "-o"; continue
            if a == path: continue
            out.append(a)
        print("\0".join(out + ["-c", path]), end="")
        sys.exit(0)
sys.exit(f"{path} is not in {db}")
PY
}

# The check can fail: the fixture's three violations are each reported.
mapfile -d '' -t cmd < <(command_for "$S/common/src/logging.cc")
fixture_cmd=()
for a in "${cmd[@]}"; do
  [[ $a == "$S/common/src/logging.cc" ]] && a=$S/tests/thread_safety/violation.cc
  fixture_cmd+=("$a")
done
if "${fixture_cmd[@]}" "${CHECK[@]}" > "$W/fixture.log" 2>&1; then
  echo "FAIL: violation.cc compiled cleanly: the analysis is not running"; exit 1
fi
for want in "writing variable 'n_' requires holding mutex 'mu_'" \
            "calling function 'Bump' requires holding mutex 'mu_'" \
            "acquiring mutex 'mu_' that is already held"; do
  grep -qF "$want" "$W/fixture.log" || { cat "$W/fixture.log"; echo "FAIL: not reported: $want"; exit 1; }
done
echo "ok: the analysis reports each of violation.cc's three violations"

# Every annotated source file in the tree (headers are checked through the files including them).
mapfile -t files < <(grep -rl --include='*.cc' -e 'thread_annotations.h' -e 'VIGIL_GUARDED_BY' \
  -e 'VIGIL_REQUIRES' -e 'MutexLock' "$S" --exclude-dir='build*' --exclude-dir=.git --exclude-dir=thread_safety |
  sort)
checked=0 failed=0
for f in "${files[@]}"; do
  if ! mapfile -d '' -t cmd < <(command_for "$f"); then failed=1; continue; fi
  [[ ${#cmd[@]} -gt 0 ]] || { echo "FAIL: $f is not in $B/compile_commands.json"; failed=1; continue; }
  if ! "${cmd[@]}" "${CHECK[@]}" > "$W/out.log" 2>&1; then
    cat "$W/out.log"; echo "FAIL: ${f#"$S"/}"; failed=1
  else
    echo "ok: ${f#"$S"/}"
  fi
  checked=$((checked + 1))
done
[[ $checked -gt 0 ]] || { echo "FAIL: no annotated source file found under $S"; exit 1; }
[[ $failed -eq 0 ]] || exit 1
echo "PASS: $checked annotated files, no thread-safety finding"
