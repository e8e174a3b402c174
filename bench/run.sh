#!/usr/bin/env bash
# bireco against a PyTorch reference of the same model and steps (bench/reference/), each
# configuration run as separate processes, alternating bireco / reference, rounds times:
# stage-I and stage-II training steps (forward, backward, clip, AdamW), embedding throughput
# and tokenizer throughput. Prints a table and, as its LAST line, the path of the results JSON.
#
#   bench/run.sh [--quick] [--shapes "mini small"] [--rounds 2] [--warmup 1] [--steps 2]
#                [--threads 2] [--build-dir build]
#
#   --quick   mini and small shapes, short sequences (<= 15 minutes on 2 cores)
#   default   also Llama-3.2-1B's shape (1b) with 1 timed step per round (slow on a CPU)
# The reference runs under the python whose torch bireco is built against (scripts/lib/deps.sh:
# the same LibTorch). GPU (CUDA visible to $PYTHON): bf16, 1b and qwen1.5b shapes at
# sequence 512, plus the HF transformers + PEFT reference (bench/reference/hf_step.py) and
# sentence-transformers; those GPU paths are written but UNTESTED (no GPU was available).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
quick=0 shapes="" rounds=2 warmup=1 steps=2 threads=2
build_dir=${BIRECO_BUILD_DIR:-$root/build}
command_line="bench/run.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; shift ;;
    --shapes) shapes=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--quick] [--shapes \"mini small\"] [--rounds N] [--warmup N] [--steps N] [--threads N] [--build-dir DIR]" >&2; exit 2 ;;
  esac
done

# 1. A release build of the bireco side, against the torch of BIRECO_PYTHON.
source "$root/scripts/lib/deps.sh"
bireco_install_torch >&2
if [ ! -f "$build_dir/build.ninja" ]; then
  BIRECO_BUILD_TARGETS=bench_train_step bireco_build "$build_dir" >&2
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build_dir/CMakeCache.txt")
if [ "$build_type" != Release ]; then
  echo "bench/run.sh: $build_dir is a '$build_type' build; pass --build-dir to a Release one" >&2
  exit 1
fi
cmake --build "$build_dir" --target bench_train_step >&2
driver=$build_dir/bench/bench_train_step

# 2. Which device: CUDA when both the reference's torch and bireco's LibTorch see one.
PYTHON=${PYTHON:-}
device=cpu
[ -n "$PYTHON" ] || PYTHON=$BIRECO_PYTHON
if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then device=cuda; fi

if [ -z "$shapes" ]; then
  if [ "$device" = cuda ]; then shapes="1b qwen1.5b"
  elif [ $quick = 1 ]; then shapes="mini small"
  else shapes="mini small 1b"; fi
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out_dir=$root/output/bench/$stamp
work=$(mktemp -d "${TMPDIR:-/tmp}/bireco-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"
raw=$out_dir/raw.jsonl
: > "$raw"
export OMP_NUM_THREADS=$threads

# measure NAME IMPL MODEL_DIR_OR_EMPTY COMMAND...: one process; its JSON line, tagged, into $raw.
measure() {
  local name=$1 impl=$2 model=$3 seq=$4; shift 4
  local line
  echo "  $name: $impl" >&2
  if line=$("$@" 2> "$work/stderr"); then
    line=$(printf '%s\n' "$line" | tail -n 1)
    if [ -n "$model" ]; then
      printf '{"name":"%s","impl":"%s","device":"%s","seq":%s,"config":%s,"run":%s}\n' \
        "$name" "$impl" "$device" "$seq" "$(tr -d '\n' < "$model/config.json")" "$line" >> "$raw"
    else
      printf '{"name":"%s","impl":"%s","device":"%s","run":%s}\n' "$name" "$impl" "$device" "$line" >> "$raw"
    fi
  else
    local why
    why=$(tail -n 1 "$work/stderr" | tr -d '"\\' | cut -c1-300)
    printf '{"name":"%s","impl":"%s","error":"%s"}\n' "$name" "$impl" "$why" >> "$raw"
    echo "    failed: $why" >&2
  fi
}

# pair NAME MODEL SEQ ARGS...: bireco and the reference(s), alternating, $rounds times.
pair() {
  local name=$1 model=$2 seq=$3; shift 3
  local r
  for r in $(seq 1 "$rounds"); do
    measure "$name" bireco "$model" "$seq" "$driver" --model "$model" --threads "$threads" "${device_args[@]}" "$@"
    measure "$name" reference "$model" "$seq" "$PYTHON" "$root/bench/reference/step.py" --model "$model" \
      --threads "$threads" "${device_args[@]}" "$@"
    if [ "$device" = cuda ]; then
      measure "$name" hf "$model" "$seq" "$PYTHON" "$root/bench/reference/hf_step.py" --model "$model" "$@"
    fi
  done
}

device_args=()
[ "$device" = cuda ] && device_args=(--device cuda --dtype bfloat16)

echo "bench/run.sh: device $device, shapes $shapes, $rounds rounds x ($warmup warm-up + $steps timed steps), $threads threads" >&2
for shape in $shapes; do
  model=$work/$shape
  "$driver" --write-model "$shape" --out "$model" >&2
  case "$device/$shape/$quick" in
    cuda/*) b1=8; tq=512; td=512; b2=16; t2=512; texts=512; tmax=512 ;;
    cpu/mini/*) b1=4; tq=32; td=64; b2=8; t2=64; texts=64; tmax=128 ;;
    cpu/small/*) b1=4; tq=32; td=64; b2=8; t2=64; texts=64; tmax=128 ;;
    *) b1=2; tq=32; td=64; b2=4; t2=64; texts=16; tmax=128 ;;
  esac
  st=$steps
  [ "$shape" = 1b ] && [ "$device" = cpu ] && st=1
  common=(--warmup "$warmup" --steps "$st")
  if [ "$shape" = 1b ] && [ "$device" = cpu ]; then
    # Full fine-tuning of 1.2B parameters in fp32 needs ~20 GB per process (weights, gradients,
    # AdamW moments) before activations: run it only where that much memory is free.
    if [ "$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)" -ge 48 ]; then
      pair "stage1-$shape" "$model" "$td" --stage 1 --batch "$b1" --query "$tq" --doc "$td" "${common[@]}"
    else
      echo "bench/run.sh: stage1-1b skipped on this CPU machine (< 48 GB available)" >&2
    fi
  else
    pair "stage1-$shape" "$model" "$td" --stage 1 --batch "$b1" --query "$tq" --doc "$td" "${common[@]}"
  fi
  pair "stage2-$shape" "$model" "$t2" --stage 2 --batch "$b2" --query "$t2" --doc "$t2" "${common[@]}"
  # Stage II with LoRA dropout 0: the first loss of both sides must agree (dropout masks differ).
  measure "parity-stage2-$shape" bireco "" 0 "$driver" --model "$model" --threads "$threads" "${device_args[@]}" \
    --stage 2 --batch "$b2" --query "$t2" --doc "$t2" --warmup 0 --steps 1 --lora-dropout 0
  measure "parity-stage2-$shape" reference "" 0 "$PYTHON" "$root/bench/reference/step.py" --model "$model" \
    --threads "$threads" "${device_args[@]}" --stage 2 --batch "$b2" --query "$t2" --doc "$t2" --warmup 0 --steps 1 --lora-dropout 0
  pair "embed-$shape" "$model" "$tmax" --stage embed --texts "$texts" --doc "$tmax" --batch-tokens 4096 "${common[@]}"
  if [ "$device" = cuda ]; then
    tok=$([ "$shape" = qwen1.5b ] && echo qwen2.5 || echo llama3.2)
    cp "${BIRECO_SHARED_DIR:-$root/../shared}/realdata/tokenizers/$tok/"* "$model/" 2>/dev/null || true
    for r in $(seq 1 "$rounds"); do
      measure "embed-$shape" sentence-transformers "$model" "$tmax" "$PYTHON" "$root/bench/reference/hf_step.py" \
        --model "$model" --stage st-embed --texts "$texts" --doc "$tmax" --batch-tokens 4096 "${common[@]}"
    done
  fi
  rm -rf "$model"
done

# Tokenizer: bireco's own byte-fallback BPE on Llama-2's tokenizer.json against Python
# sentencepiece on the same vocabulary's tokenizer.model, on SciFact texts, one thread.
realdata=${BIRECO_SHARED_DIR:-$root/../shared}/realdata
# The reference's sentencepiece, pinned, into the checkout's own .venv only (never into a
# python the user pointed us at): 0.1.99 is the last 0.1 release, nearest Debian's 0.1.97.
if [ "$PYTHON" = "$root/.venv/bin/python" ] && ! "$PYTHON" -c 'import sentencepiece' 2>/dev/null; then
  "$PYTHON" -m pip install -q --disable-pip-version-check sentencepiece==0.1.99 >&2 || true
fi
if [ -f "$realdata/tokenizers/llama2-sp/tokenizer.model" ] && "$PYTHON" -c 'import sentencepiece' 2>/dev/null; then
  n=$([ $quick = 1 ] && echo 1000 || echo 5183)
  "$PYTHON" -c '
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for i, line in enumerate(f):
        if i >= int(sys.argv[3]): break
        j = json.loads(line)
        out.write(" ".join((j.get("title", "") + " " + j.get("text", "")).split()).strip() + "\n")
' "$realdata/datasets/beir-scifact/corpus.jsonl" "$work/corpus.txt" "$n"
  for r in $(seq 1 "$rounds"); do
    measure tokenize-llama2 bireco "" 0 "$driver" --stage tokenize --tokenizer "$realdata/tokenizers/llama2-hf" \
      --corpus "$work/corpus.txt" --warmup 1 --steps 3
    measure tokenize-llama2 reference "" 0 "$PYTHON" "$root/bench/reference/step.py" --stage tokenize \
      --tokenizer "$realdata/tokenizers/llama2-sp/tokenizer.model" --corpus "$work/corpus.txt" --warmup 1 --steps 3
  done
else
  echo "bench/run.sh: no $realdata/tokenizers/llama2-sp or no Python sentencepiece: tokenizer benchmark skipped" >&2
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
machine="$(uname -n), $cpu, $(nproc) cores visible, $threads threads per side, commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "${BIRECO_COMMIT:-?}")"
[ "$device" = cuda ] && machine="$machine, $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
"$PYTHON" "$root/bench/collect.py" "$raw" "$out_dir/results.json" "$command_line" "$machine" | tee "$out_dir/table.md"
echo "$out_dir/results.json"
