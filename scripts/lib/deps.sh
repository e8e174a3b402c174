# Sourced by scripts/*.sh: installs bireco's build dependencies from Debian packages when any
# is missing (idempotent; needs root or sudo), and builds bireco with CMake + Ninja.

BIRECO_DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas0-pthread libgloo-dev
  libsentencepiece-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libyaml-cpp-dev
  libgtest-dev libpcre2-dev libutf8proc-dev
  python3-torch python3-matplotlib python3-sentencepiece iproute2
)

bireco_missing_packages() {
  local missing=() p
  for p in "${BIRECO_DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]}"
}

bireco_install_deps() {
  local missing
  missing=$(bireco_missing_packages)
  [ -z "$missing" ] && return 0
  echo "bireco: installing missing Debian packages: $missing"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "bireco: need root (or sudo) to install: $missing" >&2; return 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing
}

# bireco_build BUILD_DIR [extra cmake args...]: configures once, then builds everything.
bireco_build() {
  local build_dir=$1; shift
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  if [ ! -f "$build_dir/build.ninja" ]; then
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
  fi
  cmake --build "$build_dir" -j "$(nproc)"
}
