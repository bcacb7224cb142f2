#!/usr/bin/env bash
# The .deb built from this tree holds every binary, the systemd units and their /etc/default
# flags, the internal helpers in libexec/vigil/, declares its library dependencies, creates the
# daemons' system user, hardens their units, and its binaries run from where they are unpacked.
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
for bin in vigil-voter vigil-node vigil-run vigilctl vigil-ssr-store vigil-server vigil-client vigil-bench; do
  grep -q " $prefix/bin/$bin\$" "$W/contents" || fail "$bin missing"
done
for unit in vigil-node vigil-ssr-store; do
  grep -q "lib/systemd/system/$unit.service\$" "$W/contents" || fail "$unit.service missing"
  grep -q "etc/default/$unit\$" "$W/contents" || fail "/etc/default flags of $unit missing"
done
for bin in vigil-replica vigil-executor; do  # internal helpers
  grep -q " $prefix/libexec/vigil/$bin\$" "$W/contents" || fail "libexec/vigil/$bin missing"
  grep -q " $prefix/bin/$bin\$" "$W/contents" && fail "$bin (internal) in bin/"
done
grep -q "share/doc/vigil/docs/ssr.md\$" "$W/contents" || fail "docs missing"
dpkg-deb -I "$deb" > "$W/info"
grep -qE '^ Depends:.*libgrpc\+\+' "$W/info" || { cat "$W/info"; fail "no library dependencies"; }
grep -q 'rdma-core' "$W/info" || fail "rdma-core dependency missing"
# The daemons' system user: created by postinst (adduser, a dependency).
grep -qE '^ Depends:.*adduser' "$W/info" || fail "adduser dependency missing"
dpkg-deb -e "$deb" "$W/control"
sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$W/control/postinst" | grep -qE "adduser --system .* vigil$" ||
  fail "postinst does not create the vigil user"
sh -n "$W/control/postinst" || fail "postinst is not valid sh"
dpkg-deb -x "$deb" "$W/root"
unit="$W/root/$prefix/lib/systemd/system/vigil-node.service"
grep -q "^ExecStart=.*/bin/vigil-node \$VIGIL_NODE_ARGS" "$unit" || fail "unit ExecStart: $(grep ExecStart "$unit")"
grep -q "^LimitMEMLOCK=infinity" "$unit" || fail "unit lacks LimitMEMLOCK"
# Both units run as vigil without capabilities, hardened: systemd's own analysis of the unit files
# (offline) must rate them OK or better (an unhardened unit rates 9.6 UNSAFE).
for u in vigil-node vigil-ssr-store; do
  f="$W/root/$prefix/lib/systemd/system/$u.service"
  for d in User=vigil NoNewPrivileges=yes CapabilityBoundingSet= ProtectSystem=strict; do
    grep -qx "$d" "$f" || fail "$u.service lacks $d"
  done
  if command -v systemd-analyze > /dev/null; then
    # Checked as installed: ExecStart and EnvironmentFile name the package's paths.
    sed "s|^ExecStart=[^ ]*|ExecStart=/bin/true|" "$f" > "$W/$u.service"
    systemd-analyze verify "$W/$u.service" 2>&1 | grep -v "EnvironmentFile\|Documentation" &&
      fail "systemd-analyze verify complains about $u.service"
    level=$(systemd-analyze security --offline=true "$W/$u.service" 2>&1 | grep -o 'exposure level for .*: [0-9.]*' | grep -o '[0-9.]*$')
    echo "$u.service: exposure $level (systemd-analyze security, offline)"
    awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 4.0) }' || fail "$u.service exposure $level (> 4.0)"
  fi
done
"$W/root/$prefix/bin/vigil-node" --help | grep -q -- "--server" || fail "unpacked vigil-node does not run"
# vigil-run finds its helper where the package puts it (HelperProgram: ../libexec/vigil/).
"$W/root/$prefix/libexec/vigil/vigil-executor" --version | grep -q "^vigil " ||
  fail "unpacked vigil-executor does not run"
size=$(stat -c %s "$deb")
echo "package ok: $(basename "$deb"), $size bytes, prefix ${prefix#.}"
