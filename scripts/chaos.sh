#!/usr/bin/env bash
# Chaos test of checkpoint/resume (CPU, the tiny demo model, a few seconds of training):
# trains once uninterrupted, then starts the same run with `--resume auto`, SIGKILLs it at a
# random moment (model load, mid-step, mid-checkpoint-write), checks that every checkpoint
# counted as complete is readable, and repeats N times before letting it finish. Passes when
# final/model.safetensors (and the optimizer state) equal the uninterrupted run's byte for
# byte and no complete checkpoint was ever unreadable.
#
#   scripts/chaos.sh --kills N [--seed S] [--steps N] [--load-delay SECONDS]
#                    [--bireco PATH] [--verify 'CMD'] [--keep]
#
#   Every third kill lands 0.05..--load-delay (default 1.0) seconds after its run starts
#   (model load, resume); the others after the run logged 1-3 more steps: 0..0.05 s later (in
#   the checkpoint write or prune that follows the log line) or 0..0.25 s later (mid-step).
#   The run makes progress between kills.
#   --verify CMD   run as `CMD DIR` on every complete checkpoint after each kill (status 0 =
#                  readable); default: `bireco info --model DIR`, which checks every file
#                  against the checkpoint's manifest.json (sizes and XXH64) and reads config.json.
#   A checkpoint is complete when its manifest.json exists (written last, as --resume sees it).
#   --keep         leave the work folder (printed) instead of removing it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

kills=10
seed=1
steps=40
load_delay=1.0
bireco=${BIRECO_BIN:-$root/build/bireco}
verify=""  # set after the options: it needs $bireco
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --load-delay) load_delay=$2; shift 2 ;;
    --bireco) bireco=$2; shift 2 ;;
    --verify) verify=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "chaos.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$bireco" ] || { echo "chaos.sh: no bireco executable at $bireco (--bireco PATH)" >&2; exit 2; }
[ -n "$verify" ] || verify="$bireco info --model"

work=$(mktemp -d "${TMPDIR:-/tmp}/bireco-chaos-XXXXXX")
if [ $keep = 1 ]; then echo "chaos: work folder $work"; else trap 'rm -rf "$work"' EXIT; fi
start_time=$(date +%s.%N)

# One run's config: checkpoint every step, two kept, so kills often land in a write or a prune.
config() {  # config NAME -> path of the config for output folder $work/NAME
  cat > "$work/$1.json" <<EOF
{"stage": "reconstruction",
 "model": {"path": "$root/configs/demo/tiny-llama", "init": "random", "device": "cpu"},
 "text": {"max_length": 24, "template": "{text}", "add_eos": true},
 "data": {"train": ["$root/data/demo/train/scifact.jsonl"], "default_instruction": "Retrieve"},
 "optim": {"lr": 1e-3, "weight_decay": 0.01},
 "train": {"batch_size": 4, "max_steps": $steps, "seed": 3, "precision": "fp32", "log_level": "warn"},
 "checkpoint": {"dir": "$work/$1", "every": 1, "keep": 2}}
EOF
  echo "$work/$1.json"
}

verify_all() {  # verify_all OUT_DIR: every folder counted as complete must be readable
  local dir status=0
  for dir in "$1"/step-* "$1"/final; do
    # A save's temporaries and a folder being retired (pruned or replaced) are no checkpoints:
    # bireco never reads them and removes them on its next save (train/checkpoint.cpp).
    case "$dir" in *.tmp | *.tmp-* | *.old-*) continue ;; esac
    [ -f "$dir/manifest.json" ] || continue  # not complete: resume ignores it
    $verify "$dir" > "$work/verify.log" 2>&1 || { echo "chaos: UNREADABLE checkpoint $dir"; cat "$work/verify.log"; status=1; }
  done
  return $status
}

newest_step() {  # the newest complete step-N, or "none"
  local best=-1 dir n
  for dir in "$1"/step-*; do
    [ -f "$dir/manifest.json" ] || continue
    n=${dir##*/step-}
    case "$n" in *[!0-9]*) continue ;; esac
    [ "$n" -gt "$best" ] && best=$n
  done
  [ $best -ge 0 ] && echo "step-$best" || echo none
}

echo "chaos: reference run ($steps steps, uninterrupted)"
"$bireco" train --config "$(config reference)" > "$work/reference.log" 2>&1 ||
  { cat "$work/reference.log"; echo "chaos: FAIL: the reference run failed"; exit 1; }
reference_s=$(awk -v a="$start_time" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

random_seconds() {  # random_seconds LOW HIGH
  awk -v r=$RANDOM -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + (b - a) * r / 32767 }'
}
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

RANDOM=$seed
chaos_config=$(config chaos)
landed=0
in_write=0
failures=0
for ((i = 1; i <= kills; i++)); do
  logged=$(lines "$work/chaos/metrics.jsonl")  # each run appends a line per step
  "$bireco" train --config "$chaos_config" --resume auto >> "$work/chaos.log" 2>&1 &
  pid=$!
  if [ $((i % 3)) = 1 ]; then
    delay=$(random_seconds 0.05 "$load_delay")
    moment="${delay}s after the start"
  else
    more=$((1 + RANDOM % 3))
    delay=$(random_seconds 0 "$([ $((i % 3)) = 2 ] && echo 0.05 || echo 0.25)")
    moment="${delay}s after $more more steps"
    for ((t = 0; t < 6000; t++)); do  # a minute at most
      [ "$(lines "$work/chaos/metrics.jsonl")" -ge $((logged + more)) ] && break
      kill -0 $pid 2> /dev/null || break
      sleep 0.005
    done
  fi
  sleep "$delay"
  if kill -KILL $pid 2> /dev/null; then
    wait $pid 2> /dev/null || true
    landed=$((landed + 1))
  else
    status=0
    wait $pid || status=$?
    if [ $status -ne 0 ]; then
      tail -5 "$work/chaos.log"
      echo "chaos: FAIL: run $i exited with status $status before its kill"
      exit 1
    fi
    echo "chaos: run $i finished before its kill (raise --steps)"
    break
  fi
  note=""
  if compgen -G "$work/chaos/*.tmp" > /dev/null; then in_write=$((in_write + 1)); note=" (in a checkpoint write)"; fi
  verify_all "$work/chaos" || failures=$((failures + 1))
  echo "chaos: kill $i $moment$note; newest complete checkpoint: $(newest_step "$work/chaos")"
done

echo "chaos: final resumed run"
"$bireco" train --config "$chaos_config" --resume auto >> "$work/chaos.log" 2>&1 ||
  { tail -20 "$work/chaos.log"; echo "chaos: FAIL: the final resumed run failed"; exit 1; }
verify_all "$work/chaos" || failures=$((failures + 1))

same=1
for file in model.safetensors trainer_state/optimizer.safetensors; do
  if cmp "$work/reference/final/$file" "$work/chaos/final/$file"; then
    echo "chaos: final/$file identical to the uninterrupted run's"
  else
    same=0
  fi
done
elapsed=$(awk -v a="$start_time" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "chaos: $landed of $kills kills landed ($in_write during a checkpoint write), seed $seed," \
     "$steps steps, reference run ${reference_s}s, total ${elapsed}s;" \
     "unreadable checkpoints: $failures; final weights: $([ $same = 1 ] && echo identical || echo DIFFERENT)"
if [ $same = 1 ] && [ $failures = 0 ] && [ $landed = "$kills" ]; then
  echo "chaos: PASS"
else
  echo "chaos: FAIL"
  exit 1
fi
