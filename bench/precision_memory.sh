#!/usr/bin/env bash
# Peak memory of a LoRA stage-II run under each train.precision: `bireco train` for a few
# steps (LoRA r 16 on every projection, dropout 0.05, gradient checkpointing, batch 8 with one
# hard negative, texts up to 128 tokens) on a random model of a small Llama shape with the
# demo's tokenizer, one process per precision, its peak RSS read by GNU time. The baseline is
# the same binary loading LibTorch and the model's config only (`bireco info`).
#   bench/precision_memory.sh [--build-dir build] [--layers 8] [--hidden 512] [--steps 2]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$root/build layers=8 hidden=512 steps=2
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --hidden) hidden=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: bench/precision_memory.sh [--build-dir DIR] [--layers N] [--hidden C] [--steps N]" >&2; exit 2 ;;
  esac
done
bireco=$build_dir/bireco
[ -x "$bireco" ] || { echo "bench/precision_memory.sh: build bireco first ($bireco)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/precision_memory.sh: needs GNU time (Debian package 'time')" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=$work/model
mkdir -p "$model"
cp "$root/configs/demo/tiny-llama/tokenizer.model" "$model/"
python3 - "$root/configs/demo/tiny-llama/config.json" "$model/config.json" "$layers" "$hidden" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
layers, hidden = int(sys.argv[3]), int(sys.argv[4])
c.update(num_hidden_layers=layers, hidden_size=hidden, intermediate_size=hidden * 8 // 3,
         num_attention_heads=hidden // 64, num_key_value_heads=max(1, hidden // 256))
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
peak_mib() { sed -n 's/^peak_kib //p' "$1" | awk '{printf "%.0f", $1 / 1024}'; }
/usr/bin/time -f "peak_kib %M" -o "$work/base.time" "$bireco" info --model "$model" > "$work/info.txt"
base=$(peak_mib "$work/base.time")
params=$(sed -n 's/^parameters *\([0-9]*\) total.*/\1/p' "$work/info.txt")
echo "model: random Llama shape, $layers layers, hidden $hidden, vocab 32000: $params parameters"
echo "baseline (LibTorch loaded, no weights): $base MiB"
printf '%-11s %10s %12s %s\n' precision "peak MiB" "above base" "loss at the last step"
for precision in fp32 bf16 bf16-mixed; do
  out=$work/$precision
  /usr/bin/time -f "peak_kib %M" -o "$work/$precision.time" "$bireco" train --config "$root/configs/stage2/llama-3.2-1b.yaml" \
    --set model.path="$model" --set model.init=random --set model.dtype=auto \
    --set "data.train=[$root/data/demo/train/scifact.jsonl]" --set data.instructions="$root/configs/instructions/e5.json" \
    --set train.batch_size=8 --set train.max_steps="$steps" --set text.max_length=128 --set schedule.warmup_steps=0 \
    --set train.precision=$precision --set model.device=cpu --set checkpoint.dir="$out" --set checkpoint.every=0 \
    > "$work/$precision.log" 2>&1 || { cat "$work/$precision.log" >&2; exit 1; }
  peak=$(peak_mib "$work/$precision.time")
  loss=$(tail -n 1 "$out/metrics.jsonl" | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["loss"], 4))')
  printf '%-11s %10s %12s %s\n' "$precision" "$peak" "$((peak - base))" "$loss"
done
