#!/usr/bin/env bash
# The paper's claim as an experiment on a real pretrained model (SmolLM2-135M-Instruct,
# scripts/get_smollm2.sh): for each seed, stage II alone vs stage I + stage II at equal
# stage-II compute, evaluated on SciFact (retrieval, nDCG@10) and STS-B (Spearman); the
# untrained model once, as the floor.
#   scripts/reproduce.sh [--quick] [--seeds "1 2 3"] [--out DIR]
# --quick: the CPU demo's sizes (configs/smollm2/*.yaml as they are; SciFact's 300 test claims
#          over their judged documents and the demo corpus's first others, 500 in all (--max-corpus),
#          the first 500 STS-B test pairs) - 57 min on 2 cores in fp32 (fb33f42).
# default: sized for one GPU - texts up to 256 tokens, 10x the steps at 4x the batch, gradient
#          checkpointing, the full SciFact test corpus (5,183 documents) and all 1,379 STS-B
#          test pairs.
# Writes DIR/results.json, DIR/results.md (mean ± std and per-seed rows) and DIR/results.png.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0 seeds="1 2 3" out=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --seeds) seeds=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "usage: scripts/reproduce.sh [--quick] [--seeds \"1 2 3\"] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
source "$root/scripts/lib/deps.sh"
source "$root/scripts/lib/smollm2.sh"
bireco_prepare_smollm2_run
bireco=$BIRECO_BIN
cd "$root"
realdata=${BIRECO_SHARED_DIR:-$root/../shared}/realdata/datasets
[ -d "$realdata/stsbenchmark" ] || { echo "reproduce: needs $realdata (the team's shared folder beside the checkout)" >&2; exit 1; }

instruction="Given a scientific claim, retrieve documents that support or refute the claim"
sts_instruction="Retrieve semantically similar text"
if [ $quick = 1 ]; then
  out=${out:-output/reproduce-quick}
  sizes=() stage2_sizes=()
  scifact=data/demo/scifact-test
  scifact_limit=(--max-corpus 500)
  sts_limit=(--max-queries 500)
else
  out=${out:-output/reproduce}
  sizes=(--set text.max_length=256 --set text.query_max_length=64 --set model.gradient_checkpointing=true
         --set train.max_steps=400 --set train.batch_size=32)
  stage2_sizes=(--set train.batch_size=64)
  scifact=$realdata/beir-scifact
  scifact_limit=()
  sts_limit=()
fi
mkdir -p "$out"
start=$(date +%s)

evaluate() {  # evaluate ARM_DIR: SciFact and STS-B results beside the model
  local dir=$1
  "$bireco" eval --model "$dir/final" --task retrieval --data "$scifact" --instruction "$instruction" \
    --dtype auto "${scifact_limit[@]}" --out "$dir/scifact.json"
  "$bireco" eval --model "$dir/final" --task sts --data "$realdata/stsbenchmark/sts-test.csv" \
    --instruction "$sts_instruction" --dtype auto "${sts_limit[@]}" --out "$dir/stsb.json"
}

echo "== untrained SmolLM2 (exported with the stage-II embedding settings)"
if [ ! -f "$out/untrained/stsb.json" ]; then
  "$bireco" export --checkpoint models/smollm2 --config configs/smollm2/stage2.yaml --out "$out/untrained/final"
  evaluate "$out/untrained"
fi
for seed in $seeds; do
  d=$out/seed$seed
  echo "== seed $seed: stage I"
  [ -f "$d/stage1/final/config.json" ] || "$bireco" train --config configs/smollm2/stage1.yaml "${sizes[@]}" \
    --set train.seed="$seed" --set checkpoint.dir="$d/stage1"
  for arm in stage2_only stage1_stage2; do
    [ -f "$d/$arm/stsb.json" ] && continue
    from=models/smollm2
    [ $arm = stage1_stage2 ] && from=$d/stage1/final
    echo "== seed $seed: stage II from $from ($arm)"
    "$bireco" train --config configs/smollm2/stage2.yaml "${sizes[@]}" "${stage2_sizes[@]}" --set train.seed="$seed" \
      --set model.path="$from" --set checkpoint.dir="$d/$arm"
    evaluate "$d/$arm"
  done
done
minutes=$(( ($(date +%s) - start + 59) / 60 ))

/usr/bin/python3 "$root/scripts/lib/reproduce_report.py" "$out" "$seeds" \
  "$([ $quick = 1 ] && echo quick || echo full)" "$minutes" "$(git rev-parse --short HEAD)"
