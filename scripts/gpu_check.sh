#!/usr/bin/env bash
# The checks that need a GPU, prepared for the lent GPU machine (../shared/gpu.md: one H200,
# 16 cores, a pip torch 2.x with CUDA, no apt, no internet, runs of at most 10 minutes and
# about 15 minutes in all). Every log and result lands under $OUT (default output/gpu_check).
#
#   scripts/gpu_check.sh --fetch-debs      on a Debian machine: the C++ dependencies as .deb
#                                          files into .debs/ (git-ignored; carry it there)
#   scripts/gpu_check.sh [PHASE...]        on the GPU machine, phases in order (default: all):
#     build    bireco against that machine's torch, Debian packages unpacked from .debs/
#              into a prefix of their own (never into /), 16 jobs, only what the checks run
#     test     the test suite with CUDA available (device-taking suites also run on cuda)
#     steps    stage-I and stage-II training steps (LoRA, dropout 0.05) at Llama-3.2-1B's
#              shape (random weights), bf16, batch 8 x sequence 512, bireco and the HF
#              reference (bench/reference/hf_step.py: transformers + PEFT), with timings,
#              peak memory and MFU against 790 TFLOP/s (bench/collect.py's FLOP formula);
#              UNTESTED on a GPU (rehearsed with --dry-run only)
#   scripts/gpu_check.sh --dry-run [PHASE...]   the same on this CPU machine, so that only the
#              GPU is new on the day: .debs/ unpacked into a prefix and built against (the
#              .venv torch of scripts/test.sh), then a short test selection and the steps at a
#              small shape on the CPU
#
# One device-tool call per phase fits the 10-minute limit (build ~5 min with 16 jobs; the
# build folder stays on the machine while it is warm):
#   run(command="scripts/gpu_check.sh build", carry=[".debs"], timeout_s=590)
#   run(command="scripts/gpu_check.sh test steps", timeout_s=590)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/deps.sh

debs=(libsentencepiece-dev libsentencepiece0 nlohmann-json3-dev libcli11-dev libspdlog-dev
  libspdlog1.10 libfmt-dev libfmt9 libyaml-cpp-dev libyaml-cpp0.7 libgtest-dev libpcre2-dev
  libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2
  libgloo-dev pkgconf-bin libpkgconf3 libtcmalloc-minimal4)

if [ "${1:-}" = "--fetch-debs" ]; then
  mkdir -p .debs
  (cd .debs && apt-get download "${debs[@]}")
  grep -qx '/.debs/' .gitignore || echo "warning: .debs/ is not in .gitignore" >&2
  echo "fetched $(ls .debs/*.deb | wc -l) packages into .debs/ ($(du -sh .debs | cut -f1))"
  exit 0
fi

dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(build test steps)

OUT=${OUT:-$root/output/gpu_check}
mkdir -p "$OUT"
summary=$OUT/summary.txt
note() { echo "$*" | tee -a "$summary"; }
# phase NAME COMMAND...: runs it with its output in $OUT/NAME.log and its time in the summary.
phase() {
  local name=$1; shift
  local start status
  start=$(date +%s)
  echo "== $name (log: $OUT/$name.log)"
  set +e
  "$@" > "$OUT/$name.log" 2>&1
  status=$?
  set -e
  note "$name: exit $status in $(( $(date +%s) - start )) s"
  if [ $status -ne 0 ]; then tail -n 40 "$OUT/$name.log"; fi
  return $status
}

build_dir=${BIRECO_GPU_BUILD_DIR:-$root/build-gpu}
jobs=$(nproc)

machine_facts() {
  date -u
  uname -a
  command -v nvidia-smi >/dev/null && nvidia-smi || echo "no nvidia-smi"
  command -v nvcc >/dev/null && nvcc --version | tail -n 2 || echo "no nvcc on PATH"
  echo "python: $(command -v python3) $(python3 --version 2>&1)"
  echo "pinned torch of the Debian machines: $BIRECO_TORCH_PIN; here: $(bireco_torch_summary)"
  echo "cores: $(nproc); cmake: $(cmake --version | head -n 1); ninja: $(ninja --version 2>&1)"
}

# .deb files are ar archives holding data.tar.*: dpkg-deb where it exists, else Python.
unpack_deb() {
  local deb=$1 prefix=$2
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$deb" "$prefix"; return; fi
  python3 - "$deb" "$prefix" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not an ar archive"
at = 8
while at < len(data):
    name = data[at:at + 16].decode().strip().rstrip("/")
    size = int(data[at + 48:at + 58].decode().strip())
    body = data[at + 60:at + 60 + size]
    if name.startswith("data.tar"):
        archive = tarfile.open(fileobj=io.BytesIO(body))
        if hasattr(tarfile, "tar_filter"):  # 3.12+: say which filter, as 3.14 will ask
            archive.extractall(sys.argv[2], filter="tar")
        else:
            archive.extractall(sys.argv[2])
    at += 60 + size + (size % 2)
PY
}

# The prefix with the Debian packages, and the environment that makes CMake and pkg-config
# find them there: their .pc files say prefix=/usr, which PKG_CONFIG_SYSROOT_DIR moves under
# the prefix (--define-prefix would not: it expects lib/pkgconfig, not Debian's multiarch path).
prepare_deps() {
  local prefix=${BIRECO_DEPS_PREFIX:-/opt/bireco-deps}
  [ $dry_run = 0 ] || prefix=${BIRECO_DEPS_PREFIX:-$root/build-gpu-deps}
  ls .debs/*.deb >/dev/null 2>&1 || {
    echo "no .debs/: run 'scripts/gpu_check.sh --fetch-debs' on Debian and carry .debs" >&2
    return 1
  }
  mkdir -p "$prefix"
  local deb
  for deb in .debs/*.deb; do unpack_deb "$deb" "$prefix"; done
  local lib=$prefix/usr/lib/x86_64-linux-gnu
  export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
  # LIBDIR, not PATH: only the unpacked .pc files, never a system one by accident.
  export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$prefix/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR=$prefix
  command -v pkg-config >/dev/null || export PKG_CONFIG="$prefix/usr/bin/pkgconf"
  BIRECO_CMAKE_PREFIX_PATH="$prefix/usr;$lib/cmake"
  export BIRECO_CMAKE_PREFIX_PATH
}

do_build() {
  machine_facts
  prepare_deps
  # There: the machine's own torch (python3). Here: the .venv torch of scripts/test.sh.
  [ $dry_run = 1 ] || BIRECO_PYTHON=${BIRECO_PYTHON:-$(command -v python3)}
  bireco_install_torch  # checks that torch fits the toolkit; installs nothing when it does
  echo "building in $build_dir with $jobs jobs"
  BIRECO_BUILD_TARGETS="bireco bireco_tests bireco_dist_worker bench_train_step" \
    bireco_build "$build_dir" -DBIRECO_SHARED_DIR="$root/../shared"
  grep -E "^(CMAKE_BUILD_TYPE|BIRECO_NCCL_INCLUDE_DIR|BIRECO_GLOO_INCLUDE_DIR)" "$build_dir/CMakeCache.txt"
  "$build_dir/bireco" info
  echo "NEEDED of bireco:"; readelf -d "$build_dir/bireco" | grep NEEDED
}

do_test() {
  prepare_deps
  "$build_dir/bireco" info
  local args=(--output-on-failure -j "$jobs" --timeout 300)
  # The rehearsal runs a selection; the GPU machine runs everything.
  [ $dry_run = 1 ] && args+=(-R 'Sdpa|Autocast|Build\.|DataParallel.*Two')
  (cd "$build_dir" && ctest "${args[@]}")
}

do_steps() {
  prepare_deps
  # Llama-3.2-1B's shape (random weights), bf16, every text 512 tokens (bench/workload.py
  # --synthetic), batch 8; the dry run: the small shape on the CPU at 64 tokens.
  local shape=1b device=cuda dtype=bfloat16 seq=512 batch=8 vocab=128256
  local python=${BIRECO_PYTHON:-$(command -v python3)}  # there: the machine's python3
  [ $dry_run = 0 ] || python=${BIRECO_PYTHON:-$root/.venv/bin/python}
  if [ $dry_run = 1 ]; then shape=small device=cpu dtype=float32 seq=64 batch=2 vocab=49152; fi
  local model=${TMPDIR:-/tmp}/bireco_gpu_check_model_$shape  # not under $OUT: GBs at 1b
  [ -f "$model/config.json" ] || "$build_dir/bench/bench_train_step" --write-model "$shape" --out "$model"
  local workload=$OUT/workload_$shape.json raw=$OUT/steps_raw.jsonl sizes=$OUT/steps_sizes.txt
  "$python" bench/workload.py --synthetic "$batch,$seq,$seq" --vocab $vocab --batches 4 --out "$workload" | tee "$sizes"
  echo "$shape, $device, $dtype, 1 warm-up + 3 timed steps; stage II: LoRA r 16, dropout 0.05" >> "$sizes"
  : > "$raw"
  local stage impl line
  for stage in 1 2; do
    for impl in bireco hf; do
      echo "stage $stage, $impl: shape $shape, $device, $dtype, batch $batch x $seq tokens"
      if [ $impl = bireco ]; then
        line=$("$build_dir/bench/bench_train_step" --stage $stage --model "$model" --workload "$workload" \
          --device $device --dtype $dtype --warmup 1 --steps 3 --threads "$jobs" | tail -n 1)
      else
        line=$("$python" bench/reference/hf_step.py --stage $stage --model "$model" --workload "$workload" \
          --device $device --warmup 1 --steps 3 --threads "$jobs" | tail -n 1)
      fi
      echo "$line" | tee "$OUT/step_stage${stage}_$impl.json"
      printf '{"name":"stage%s-%s","impl":"%s","device":"%s","seq":%s,"config":%s,"run":%s}\n' "$stage" "$shape" \
        "$impl" "$device" "$seq" "$(tr -d '\n' < "$model/config.json")" "$line" >> "$raw"
    done
  done
  # The table of bench/run.sh, with MFU against 790 TFLOP/s on CUDA (bench/collect.py).
  "$python" bench/collect.py "$raw" "$OUT/steps_results.json" "scripts/gpu_check.sh steps" \
    "$(uname -n), $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 || echo 'no GPU')" \
    "$sizes" | tee "$OUT/steps_table.md"
}

: > "$summary"
note "gpu_check $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?') dry_run=$dry_run phases=${phases[*]}"
for p in "${phases[@]}"; do
  case $p in
    build) phase build do_build ;;
    test) phase test do_test ;;
    steps) phase steps do_steps ;;
    *) echo "unknown phase '$p' (build, test, steps)" >&2; exit 2 ;;
  esac
done
note "all phases passed; logs in $OUT"
