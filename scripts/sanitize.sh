#!/usr/bin/env bash
# The torch-free code (util, config, text, data readers, safetensors header) under
# AddressSanitizer + UndefinedBehaviorSanitizer: bireco_tests_lite, then each libFuzzer
# target fuzz/<target>.cpp for BIRECO_FUZZ_SECONDS (default 30) on a copy of its seeds in
# tests/fuzz/<target>/. Fails on a failing test, a sanitizer report, or a fuzzer crash, leak
# or timeout; the input that broke a fuzzer is left in <build>/fuzz-artifacts/.
# The fuzzers start from BIRECO_FUZZ_SEED (default 1) rather than a random seed, so CI walks
# the same mutations each time (not bit for bit: address layout and the scratch folder's name
# nudge coverage, and a slower machine stops earlier). Before a change lands, run them for 10
# minutes from that seed and from random ones (seed 0); CI's 30 s then guards against
# regressions instead of being the place new bugs turn up:
#   scripts/sanitize.sh                       (scripts/test.sh runs it after ctest)
#   BIRECO_FUZZ_SECONDS=600 scripts/sanitize.sh
#   BIRECO_FUZZ_SECONDS=600 BIRECO_FUZZ_SEED=0 scripts/sanitize.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/deps.sh"
# clang for libFuzzer; its runtimes (ASan, UBSan, libFuzzer) are a separate package.
BIRECO_DEBIAN_PACKAGES+=(clang-14 libclang-rt-14-dev)
bireco_install_deps

build_dir=${BIRECO_SANITIZE_BUILD_DIR:-$root/build-sanitize}
seconds=${BIRECO_FUZZ_SECONDS:-30}
seed=${BIRECO_FUZZ_SEED:-1}  # libFuzzer takes 0 as "pick one at random"
start=$(date +%s)
if [ ! -f "$build_dir/build.ninja" ]; then
  # No LibTorch in this build (cmake/torch_free.cmake): it configures in seconds.
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 -DBIRECO_SANITIZE=ON -DBIRECO_FUZZ=ON
fi
cmake --build "$build_dir" -j "$(nproc)"
echo "sanitize: built in $(($(date +%s) - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# MegabyteInputs times 1 MB encodes against a 30 s bound that ASan's ~10x slowdown breaks
# (86 s here); the normal build runs it.
"$build_dir/bireco_tests_lite" --gtest_brief=1 --gtest_filter='-TokenizerEdgeCases.MegabyteInputs'
echo "sanitize: bireco_tests_lite passed ($(($(date +%s) - start)) s so far)"

# target and its -max_len (bytes; above its largest seed)
fuzz_targets=(safetensors_header:4096 tokenizer_json:8192 config_document:4096 pair_records:4096
  model_config:4096)
artifacts="$build_dir/fuzz-artifacts"
mkdir -p "$artifacts"
# The targets that parse files write each input there (fuzz/fuzz_support.h); memory-backed
# when /dev/shm exists, and removed at the end.
scratch=$(mktemp -d -p /dev/shm bireco-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for entry in "${fuzz_targets[@]}"; do
  target=${entry%%:*}
  max_len=${entry##*:}
  corpus=$(mktemp -d)  # a copy: the corpus grows while fuzzing, the repository must not
  cp "$root/tests/fuzz/$target"/* "$corpus/"
  log="$artifacts/$target.log"
  # -timeout: one input running past 10 s is a hang; -rss_limit_mb: a leak that grows.
  if ! TMPDIR=$scratch "$build_dir/fuzz/fuzz_$target" -max_total_time="$seconds" -seed="$seed" \
      -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$target-" "$corpus" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "sanitize: fuzz_$target failed; the input is in $artifacts/ (log: $log)" >&2
    rm -rf "$corpus"
    exit 1
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  seed_line=$(grep -m1 -E 'Seed: [0-9]+' "$log" || true)
  echo "sanitize: fuzz_$target ${seconds} s, ${seed_line#*INFO: }: ${done_line:-no DONE line} (corpus $(ls "$corpus" | wc -l) files)"
  rm -rf "$corpus"
done
echo "sanitize: all clean in $(($(date +%s) - start)) s"
