# Sourced by scripts/*.sh: installs what bireco's build needs when any of it is missing
# (idempotent), and builds bireco with CMake + Ninja.
#   - LibTorch: the one inside the pip `torch` wheel, pinned below, in a git-ignored virtual
#     environment of the checkout (.venv/), or a `torch` that BIRECO_PYTHON or the user's
#     python3 already imports when it is new enough and its CUDA matches the toolkit here.
#   - everything else C++: Debian packages (needs root or sudo).

# torch 2.11.0's default Linux wheel is built for CUDA 13.0, like the toolkit of the project's
# machines, and is the torch of the lent GPU machine (2.11.0+cu130): one recipe for both.
# Its CUDA libraries, cuDNN and NCCL come as the wheel's pinned nvidia-* dependencies.
BIRECO_TORCH_PIN=2.11.0
BIRECO_TORCH_PIN_CUDA=13.0  # the CUDA of that wheel (torch.version.cuda)
# The oldest torch bireco builds against (also in CMakeLists.txt and util/compat.h): 2.7's
# pip wheels are the first built with the C++11 std::string ABI of Debian's libraries.
BIRECO_TORCH_MIN=2.7

BIRECO_DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libgloo-dev  # only the headers that the wheel's ProcessGroupGloo.hpp includes (cmake/torch_backends.cmake)
  libsentencepiece-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libyaml-cpp-dev
  libgtest-dev libpcre2-dev libutf8proc-dev
  libtcmalloc-minimal4  # the executables' allocator (cmake/tcmalloc.cmake)
  python3-matplotlib python3-sentencepiece iproute2
)

bireco_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); }

bireco_missing_packages() {
  local missing=() p
  for p in "${BIRECO_DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]}"
}

bireco_install_debian_packages() {
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

# The CUDA toolkit's major.minor ("13.0"), or nothing when nvcc is not found.
bireco_toolkit_cuda() {
  local nvcc
  nvcc=$(command -v nvcc || true)
  [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
  [ -n "$nvcc" ] || return 0
  "$nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p'
}

# Exit status 0 when PYTHON imports a torch that bireco can build against here: at least
# BIRECO_TORCH_MIN, and a CPU build or one whose CUDA major.minor is the toolkit's (the CUDA
# wheel's CMake config compiles against the toolkit's headers).
bireco_torch_fits() {
  local python=$1 toolkit=$2
  "$python" - "$BIRECO_TORCH_MIN" "$toolkit" <<'PY' 2>/dev/null
import sys
import torch
need = tuple(int(x) for x in sys.argv[1].split("."))
have = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
cuda = torch.version.cuda
sys.exit(0 if have >= need and (cuda is None or cuda == sys.argv[2]) else 1)
PY
}

# Sets BIRECO_PYTHON to a python whose torch bireco builds against, installing the pinned
# wheel into .venv/ when no suitable torch is there yet.
bireco_install_torch() {
  local root toolkit candidate
  root=$(bireco_root)
  toolkit=$(bireco_toolkit_cuda)
  for candidate in "${BIRECO_PYTHON:-}" "$root/.venv/bin/python" "$(command -v python3 || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if bireco_torch_fits "$candidate" "$toolkit"; then
      BIRECO_PYTHON=$candidate
      export BIRECO_PYTHON
      return 0
    fi
  done
  if [ -z "$toolkit" ]; then
    cat >&2 <<EOF
bireco: no CUDA toolkit found (nvcc is neither on PATH nor in /usr/local/cuda/bin).
  The pinned torch $BIRECO_TORCH_PIN wheel is CUDA-enabled, and its CMake config compiles
  against the CUDA 13.0 toolkit: install it (nvcc, cudart, cuBLAS, cuDNN and NCCL headers,
  e.g. NVIDIA's cuda-toolkit-13-0 package) and put nvcc on PATH, or point BIRECO_PYTHON at a
  python whose torch >= $BIRECO_TORCH_MIN matches the toolkit you have (a CPU-only torch needs none).
EOF
    return 1
  fi
  if [ "$toolkit" != "$BIRECO_TORCH_PIN_CUDA" ]; then
    echo "bireco: the pinned torch $BIRECO_TORCH_PIN wheel is built for CUDA $BIRECO_TORCH_PIN_CUDA" \
      "but the toolkit here is CUDA $toolkit: install the CUDA $BIRECO_TORCH_PIN_CUDA toolkit, or point" \
      "BIRECO_PYTHON at a python whose torch >= $BIRECO_TORCH_MIN is built for CUDA $toolkit" >&2
    return 1
  fi
  echo "bireco: installing torch $BIRECO_TORCH_PIN (LibTorch, CUDA $toolkit) into $root/.venv"
  if [ ! -x "$root/.venv/bin/python" ]; then
    python3 -m venv "$root/.venv" || {
      echo "bireco: 'python3 -m venv' failed: install python3-venv (Debian) and retry" >&2
      return 1
    }
  fi
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$BIRECO_TORCH_PIN"
  if ! bireco_torch_fits "$root/.venv/bin/python" "$toolkit"; then
    echo "bireco: torch $BIRECO_TORCH_PIN is built for CUDA" \
      "$("$root/.venv/bin/python" -c 'import torch; print(torch.version.cuda)' 2>/dev/null) but the toolkit" \
      "here is CUDA $toolkit: install the toolkit of the wheel's CUDA" >&2
    return 1
  fi
  BIRECO_PYTHON=$root/.venv/bin/python
  export BIRECO_PYTHON
}

# Installs the pinned Python stack that tests and benchmarks compare bireco with
# (scripts/lib/python-tools.txt: transformers, peft, sentence-transformers, ...) into the
# environment of BIRECO_PYTHON (they need its torch), once per version of that list. A python
# outside any virtual environment is left alone: point BIRECO_PYTHON at a venv, or let this
# script make .venv/. Sets BIRECO_TOOLS_READY=1 when the stack imports.
bireco_install_python_tools() {
  local root list stamp digest
  root=$(bireco_root)
  list=$root/scripts/lib/python-tools.txt
  digest=$(sha256sum "$list" | cut -c1-16)
  if ! "$BIRECO_PYTHON" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    echo "bireco: $BIRECO_PYTHON is no virtual environment; not installing the Python stack into it" \
      "(tests that compare with transformers/peft/sentence-transformers will skip)" >&2
    return 0
  fi
  stamp=$("$BIRECO_PYTHON" -c 'import sys; print(sys.prefix)')/.bireco-python-tools
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    echo "bireco: installing the pinned Python stack ($list) for $BIRECO_PYTHON"
    "$BIRECO_PYTHON" -m pip install -q --disable-pip-version-check -r "$list" || {
      echo "bireco: pip could not install $list (is PyPI reachable?)" >&2
      return 1
    }
    echo "$digest" > "$stamp"
  fi
  BIRECO_TOOLS_READY=1
  export BIRECO_TOOLS_READY
}

bireco_install_deps() {
  bireco_install_debian_packages
  bireco_install_torch
}

# One line for logs: the torch that bireco is built against, its CUDA and NCCL.
bireco_torch_summary() {
  "$BIRECO_PYTHON" -c 'import torch
nccl = ".".join(map(str, torch.cuda.nccl.version())) if torch.version.cuda else "none"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, NCCL {nccl}, CUDA available: {torch.cuda.is_available()}) at {torch.__path__[0]}")' 2>/dev/null
}

# bireco_build BUILD_DIR [extra cmake args...]: configures once (BIRECO_CMAKE_PREFIX_PATH:
# more folders for CMake to search), then builds.
bireco_build() {
  local build_dir=$1; shift
  local root torch_cmake
  root=$(bireco_root)
  torch_cmake=$("$BIRECO_PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
  echo "bireco: building against $(bireco_torch_summary)"
  if [ ! -f "$build_dir/build.ninja" ]; then
    local cuda=()
    [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null && cuda=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$torch_cmake${BIRECO_CMAKE_PREFIX_PATH:+;$BIRECO_CMAKE_PREFIX_PATH}" \
      -DPython_EXECUTABLE="$BIRECO_PYTHON" "${cuda[@]}" "$@"
  fi
  # BIRECO_BUILD_TARGETS: only these (scripts/gpu_check.sh); default everything.
  # shellcheck disable=SC2086
  cmake --build "$build_dir" -j "$(nproc)" ${BIRECO_BUILD_TARGETS:+--target $BIRECO_BUILD_TARGETS}
}
