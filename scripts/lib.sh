# Shared by scripts/demo and scripts/test: dependency installation and builds. Source it.
set -euo pipefail

VIGIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VIGIL_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3 clang-format
  libibverbs-dev librdmacm-dev rdma-core ibverbs-providers ibverbs-utils perftest iproute2
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libxxhash-dev libisal-dev
  libgtest-dev libgmock-dev libbenchmark-dev libseccomp-dev
  qemu-system-x86 busybox-static cpio kmod
  dpkg-dev ansible ansible-lint python3-matplotlib
  clang-16 libfuzzer-16-dev libclang-rt-16-dev
)

say() { echo "==> $*"; }

# Installs whatever is missing (apt-get as root; otherwise prints the command to run).
vigil_install_deps() {
  local missing=()
  for p in "${VIGIL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "dependencies: all ${#VIGIL_PACKAGES[@]} packages present"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: missing packages: ${missing[*]}" >&2
    echo "install them as root, then re-run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  say "installing ${#missing[@]} missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# vigil_build DIR [cmake options...]: configures (once) and builds.
vigil_build() {
  local dir=$1; shift
  say "building $dir ($*)"
  cmake -S "$VIGIL_ROOT" -B "$VIGIL_ROOT/$dir" -G Ninja -DVIGIL_WERROR=ON "$@" >/dev/null
  ninja -C "$VIGIL_ROOT/$dir" ${VIGIL_BUILD_JOBS:+-j "$VIGIL_BUILD_JOBS"} | grep -vE '^\[[0-9]+/[0-9]+\] ' || true
  # ninja's status is lost in the pipe: check the build really finished.
  ninja -C "$VIGIL_ROOT/$dir" -n 2>/dev/null | grep -q 'no work to do' || { echo "error: build of $dir failed" >&2; exit 1; }
}
