#!/usr/bin/env bash
# The .deb built from this tree holds every binary, the systemd units and their /etc/default
# flags, vigil-run's internal helper in libexec/vigil/, declares its library dependencies, and its
# binaries run from where they are unpacked.
# Usage: package_test.sh BUILD_DIR
set -euo pipefail
B=$1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
(cd "$W" && cpack -G DEB --config "$B/CPackConfig.cmake" -B "$W" > cpack.log 2>&1) ||
  { cat "$W/cpack.log"; fail "cpack failed"; }
deb=$(ls "$W"/vigil_*.deb) || fail "no .deb produced"
dpkg-deb -c "$deb" > "$W/contents"
prefix=$(grep -oE '\./[^ ]*/bin/vigil-node$' "$W/contents" | sed 's|/bin/vigil-node$||')
[[ -n $prefix ]] || fail "no vigil-node in the package"
for bin in vigil-voter vigil-node vigil-replica vigil-run vigilctl vigil-ssr-store vigil-server vigil-client vigil-bench; do
  grep -q " $prefix/bin/$bin\$" "$W/contents" || fail "$bin missing"
done
for unit in vigil-node vigil-ssr-store; do
  grep -q "lib/systemd/system/$unit.service\$" "$W/contents" || fail "$unit.service missing"
  grep -q "etc/default/$unit\$" "$W/contents" || fail "/etc/default flags of $unit missing"
done
grep -q " $prefix/libexec/vigil/vigil-executor\$" "$W/contents" || fail "libexec/vigil/vigil-executor missing"
grep -q " $prefix/bin/vigil-executor\$" "$W/contents" && fail "vigil-executor (internal) in bin/"
grep -q "share/doc/vigil/docs/ssr.md\$" "$W/contents" || fail "docs missing"
dpkg-deb -I "$deb" > "$W/info"
grep -qE '^ Depends:.*libgrpc\+\+' "$W/info" || { cat "$W/info"; fail "no library dependencies"; }
grep -q 'rdma-core' "$W/info" || fail "rdma-core dependency missing"
dpkg-deb -x "$deb" "$W/root"
unit="$W/root/$prefix/lib/systemd/system/vigil-node.service"
grep -q "^ExecStart=.*/bin/vigil-node \$VIGIL_NODE_ARGS" "$unit" || fail "unit ExecStart: $(grep ExecStart "$unit")"
grep -q "^LimitMEMLOCK=infinity" "$unit" || fail "unit lacks LimitMEMLOCK"
"$W/root/$prefix/bin/vigil-node" --help | grep -q -- "--server" || fail "unpacked vigil-node does not run"
# vigil-run finds its helper where the package puts it (HelperProgram: ../libexec/vigil/).
"$W/root/$prefix/libexec/vigil/vigil-executor" --version | grep -q "^vigil " ||
  fail "unpacked vigil-executor does not run"
size=$(stat -c %s "$deb")
echo "package ok: $(basename "$deb"), $size bytes, prefix ${prefix#.}"
