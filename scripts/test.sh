#!/usr/bin/env bash
# Installs what is missing, builds bireco and runs every test with ctest, then
# scripts/sanitize.sh.
#   scripts/test.sh [ctest args...]     e.g. scripts/test.sh -R Config
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/deps.sh"
bireco_install_deps
build_dir=${BIRECO_BUILD_DIR:-$root/build}
bireco_build "$build_dir"
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "$@"
# A full run (no ctest arguments) also checks the torch-free code under ASan + UBSan and fuzzes
# its parsers briefly (scripts/sanitize.sh: 10 min on a busy 2-core machine, 5 CPU-min of clang
# build + 2 min of fuzzing); BIRECO_SANITIZE=0 skips that.
if [ $# -eq 0 ] && [ "${BIRECO_SANITIZE:-1}" != 0 ]; then
  "$root/scripts/sanitize.sh"
fi
