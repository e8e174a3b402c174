#!/usr/bin/env bash
# Per-rank peak memory and step time of stage-I full fine-tuning on 2 Gloo ranks under each
# dist.shard (none, optimizer = ZeRO-1, gradients = ZeRO-2): `bireco launch` of 2 local ranks
# of `bireco train` for a few steps (batch 2 per rank, grad_accum 2, texts up to 64 tokens) on
# a random model of a small Llama shape with the demo's tokenizer, each rank's peak RSS read by
# GNU time; the step time is the median over the steps after the first (tokens / tokens_per_s
# of metrics.jsonl; the first step also counts gradient contributions). The baseline is one
# process loading LibTorch and the model's config only (`bireco info`).
#   bench/shard_memory.sh [--build-dir build] [--layers 4] [--hidden 512] [--steps 5]
#                         [--precision bf16-mixed]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$root/build layers=4 hidden=512 steps=5 precision=bf16-mixed
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --hidden) hidden=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    *) echo "usage: bench/shard_memory.sh [--build-dir DIR] [--layers N] [--hidden C] [--steps N] [--precision P]" >&2; exit 2 ;;
  esac
done
bireco=$build_dir/bireco
[ -x "$bireco" ] || { echo "bench/shard_memory.sh: build bireco first ($bireco)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/shard_memory.sh: needs GNU time (Debian package 'time')" >&2; exit 1; }
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
/usr/bin/time -f "peak_kib %M" -o "$work/base.time" "$bireco" info --model "$model" \
  --set train.precision="$precision" --set dist.shard=optimizer --world-size 2 > "$work/info.txt"
base=$(peak_mib "$work/base.time")
params=$(sed -n 's/^parameters *\([0-9]*\) total.*/\1/p' "$work/info.txt")
echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "  machine: $(uname -srm), $(nproc) cpus"
echo "command: bench/shard_memory.sh --layers $layers --hidden $hidden --steps $steps --precision $precision"
echo "model: random Llama shape, $layers layers, hidden $hidden, vocab 32000: $params parameters, all trained"
echo "baseline (LibTorch loaded, no weights): $base MiB; bireco info's estimate per rank of 2:"
sed -n '/^  precision /p; /^  '"$precision"' /p' "$work/info.txt"
printf '%-10s %14s %14s %12s %s\n' shard "rank0 peak MiB" "rank1 peak MiB" "step s" "loss at the last step"
for shard in none optimizer gradients; do
  out=$work/$shard
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$bireco" launch --nproc-per-node 2 --master-port "$port" -- /bin/sh -c \
    '/usr/bin/time -f "peak_kib %M" -o "$0.rank$RANK.time" "$@"' "$work/$shard" \
    "$bireco" train --config "$root/configs/stage1/llama-3.2-1b.yaml" \
    --set model.path="$model" --set model.init=random --set model.dtype=auto --set model.device=cpu \
    --set "data.train=[$root/data/demo/train/scifact.jsonl]" --set data.instructions="$root/configs/instructions/e5.json" \
    --set train.batch_size=2 --set train.grad_accum=2 --set train.max_steps="$steps" --set text.max_length=64 \
    --set schedule.warmup_steps=0 --set train.precision="$precision" --set dist.backend=gloo \
    --set dist.shard=$shard --set checkpoint.dir="$out" --set checkpoint.every=0 \
    > "$work/$shard.log" 2>&1 || { cat "$work/$shard.log" >&2; exit 1; }
  step_s=$(python3 - "$out/metrics.jsonl" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])][1:]
print("%.3f" % statistics.median(l["tokens"] / l["tokens_per_s"] for l in lines) if lines else "n/a")
PY
)
  loss=$(tail -n 1 "$out/metrics.jsonl" | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["loss"], 4))')
  printf '%-10s %14s %14s %12s %s\n' "$shard" "$(peak_mib "$work/$shard.rank0.time")" \
    "$(peak_mib "$work/$shard.rank1.time")" "$step_s" "$loss"
done
