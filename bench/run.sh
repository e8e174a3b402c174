#!/usr/bin/env bash
# bireco against the Python stack its users run, on real data, each configuration in separate
# processes, alternating bireco / reference, `rounds` times, the same thread count on both
# sides. Prints a table (commit, machine, command, sizes) and, as its LAST line, the path of
# the results JSON (rows: name, ratio = bireco / reference tokens per second, bireco_peak_mb,
# reference_peak_mb, parity, target, ...).
#
#   bench/run.sh [--quick] [--shapes "small smollm2 1b"] [--rounds N] [--warmup N] [--steps N]
#                [--threads 2] [--build-dir build] [--sizes B1,B2,TEXTS] [--profile]
#                [--reference-malloc glibc|tcmalloc]
#
# Rows per shape (the batches: bench/workload.py, SciFact train claims with the export's query
# prompt, their judged abstracts and another abstract as hard negative, tokenised by the
# shape's `bireco export --config` tokenizer; lengths as they come, documents cut at 512):
#   stage1-S     bireco's stage-I step vs transformers (the authors' loss through labels=, all
#                logits), full fine-tuning, gradient checkpointing, AdamW, clip 1.0
#   stage2-S     bireco's stage-II step vs transformers + PEFT (LoRA r 16 on all seven
#                projections), InfoNCE cosine x 50, in-batch + hard negatives
#   gradcache-S  bireco's stage II with GradCache (chunk = batch / 4) vs its plain step
#   gradcache-keep-S  the same with gradcache_recompute off: each chunk's pass keeps its
#                activations instead of being checkpointed again
#   embed-S      bireco's eval::Encoder (tokenising included) vs SentenceTransformer(export).encode
# plus tokenize-llama2 (bireco's tokenizer vs Python sentencepiece, one thread).
# Shapes: smollm2 = models/smollm2 (the real SmolLM2-135M-Instruct, when present); small =
# SmolLM2's shape cut to 4 layers, random weights, SmolLM2's tokenizer; 1b = Llama-3.2-1B's
# shape, random weights, the Llama-3.2 tokenizer of ../shared/realdata (stage I only where
# 48 GB are free: fp32 full fine-tuning of 1.2B parameters is ~20 GB per process).
#   --quick   small + smollm2 at modest batches, 1 warm-up + 1 timed step, 1 round (about
#             15-20 minutes on 2 quiet cores)
#   default   small + smollm2 + 1b, 2 rounds (1b: 1 timed step)
#   --sizes   stage-I batch, stage-II batch, embedding texts for every shape (a smoke test:
#             --shapes small --sizes 1,4,4 --warmup 0 --steps 1)
#   --profile after the timed rounds, one more process per side and training row with the
#             operators' self time over its first timed step (the profiler's own cost is not
#             in the table's figures), compared in profile.md (bench/profile_ops.py)
#   --reference-malloc  tcmalloc: the Python side with Debian's tcmalloc preloaded, the
#             allocator bireco's executables link (cmake/tcmalloc.cmake); default glibc, the
#             stack as users run it
# CPU: float32 on both sides. CUDA visible (UNTESTED: no GPU was available): bf16 weights, the
# 1b shape at larger batches; scripts/gpu_check.sh's `steps` phase holds the MFU check.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
quick=0 shapes="" rounds="" warmup=1 steps="" threads=2 sizes_override="" profile=0 reference_malloc=glibc
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
    --sizes) sizes_override=$2; shift 2 ;;
    --profile) profile=1; shift ;;
    --reference-malloc) reference_malloc=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--quick] [--shapes \"small smollm2 1b\"] [--rounds N] [--warmup N] [--steps N] [--threads N] [--build-dir DIR] [--sizes B1,B2,TEXTS] [--profile] [--reference-malloc glibc|tcmalloc]" >&2; exit 2 ;;
  esac
done
[ -n "$rounds" ] || rounds=$([ $quick = 1 ] && echo 1 || echo 2)
[ -n "$steps" ] || steps=$([ $quick = 1 ] && echo 1 || echo 2)
started=$(date +%s)
load_start=$(cut -d' ' -f1 /proc/loadavg)

# 1. A release build of the bireco side, against the torch of BIRECO_PYTHON.
source "$root/scripts/lib/deps.sh"
bireco_install_torch >&2
if [ ! -f "$build_dir/build.ninja" ]; then
  BIRECO_BUILD_TARGETS="bireco bench_train_step" bireco_build "$build_dir" >&2
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build_dir/CMakeCache.txt")
if [ "$build_type" != Release ]; then
  echo "bench/run.sh: $build_dir is a '$build_type' build; pass --build-dir to a Release one" >&2
  exit 1
fi
cmake --build "$build_dir" --target bench_train_step bireco >&2
driver=$build_dir/bench/bench_train_step
bireco=$build_dir/bireco

# 2. The reference: the pinned transformers / PEFT / sentence-transformers of the same .venv
# (scripts/lib/python-tools.txt), on the same torch.
PYTHON=${PYTHON:-$BIRECO_PYTHON}
if ! "$PYTHON" -c 'import transformers, peft, sentence_transformers' 2>/dev/null; then
  echo "bench/run.sh: $PYTHON lacks transformers / peft / sentence-transformers (scripts/lib/deps.sh: bireco_install_python_tools)" >&2
  exit 1
fi
device=cpu
if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then device=cuda; fi
dtype=$([ $device = cuda ] && echo bfloat16 || echo float32)

realdata=${BIRECO_SHARED_DIR:-$root/../shared}/realdata
scifact=$realdata/datasets/beir-scifact
smollm2=${BIRECO_SMOLLM2_DIR:-$root/models/smollm2}
if [ -z "$shapes" ]; then
  if [ $device = cuda ]; then shapes="1b"
  elif [ $quick = 1 ]; then shapes="small smollm2"
  else shapes="small smollm2 1b"; fi
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out_dir=$root/output/bench/$stamp
work=$(mktemp -d "${TMPDIR:-/tmp}/bireco-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"
raw=$out_dir/raw.jsonl sizes=$out_dir/sizes.txt
: > "$raw"
: > "$sizes"
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads

# measure NAME IMPL MODEL COMMAND...: one process; its JSON line, tagged with the model's
# config.json (for MFU) and the embeddings it saved, if any, into $raw.
measure() {
  local name=$1 impl=$2 model=$3; shift 3
  local line saved="" a prev="" config=null
  for a in "$@"; do [ "$prev" = --save-embeddings ] && saved=$a; prev=$a; done
  [ -n "$model" ] && config=$(tr -d '\n' < "$model/config.json")
  echo "  $name: $impl" >&2
  if line=$("$@" 2> "$work/stderr"); then
    line=$(printf '%s\n' "$line" | tail -n 1)
    printf '{"name":"%s","impl":"%s","device":"%s","seq":512,"embeddings":%s,"config":%s,"run":%s}\n' \
      "$name" "$impl" "$device" "$([ -n "$saved" ] && echo "\"$saved\"" || echo null)" \
      "$config" "$line" >> "$raw"
  else
    local why
    why=$(grep -v '^\s*$' "$work/stderr" | tail -n 1 | tr -d '"\\' | cut -c1-300)
    printf '{"name":"%s","impl":"%s","error":"%s"}\n' "$name" "$impl" "$why" >> "$raw"
    echo "    failed: $why" >&2
  fi
}

common=(--threads "$threads" --device "$device")
ref=("$PYTHON" "$root/bench/reference/hf_step.py")
case $reference_malloc in
  glibc) ;;
  tcmalloc)
    tcmalloc=$(sed -n 's/^BIRECO_TCMALLOC:FILEPATH=//p' "$build_dir/CMakeCache.txt")
    [ -f "$tcmalloc" ] || { echo "bench/run.sh: no tcmalloc in $build_dir (cmake/tcmalloc.cmake)" >&2; exit 1; }
    ref=(env LD_PRELOAD="$tcmalloc" "${ref[@]}") ;;
  *) echo "bench/run.sh: --reference-malloc is glibc or tcmalloc, not '$reference_malloc'" >&2; exit 2 ;;
esac
mem_gb=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
echo "bench/run.sh: device $device ($dtype), shapes $shapes, $rounds round(s), $threads threads per side" >&2
if awk -v l="$load_start" -v n="$(nproc)" 'BEGIN { exit !(l > 0.25 * n) }'; then
  echo "bench/run.sh: warning: load average $load_start on $(nproc) cores before the start: timings will be shared" >&2
fi

for shape in $shapes; do
  # 2. The model folder, its export (tokenizer.json with the template; the embed rows' model)
  # and the workloads.
  model=$work/$shape config=configs/smollm2/stage2.yaml
  case $shape in
    smollm2)
      if [ ! -f "$smollm2/model.safetensors" ]; then
        echo "bench/run.sh: no $smollm2 (scripts/get_smollm2.sh): shape smollm2 skipped" >&2; continue
      fi
      model=$smollm2 ;;
    small)
      if [ ! -f "$smollm2/tokenizer.json" ]; then
        echo "bench/run.sh: shape small needs SmolLM2's tokenizer ($smollm2, scripts/get_smollm2.sh): skipped" >&2; continue
      fi
      "$driver" --write-model small --out "$model" >&2
      cp "$smollm2"/tokenizer.json "$smollm2"/tokenizer_config.json "$model/"
      [ -f "$smollm2/special_tokens_map.json" ] && cp "$smollm2/special_tokens_map.json" "$model/" ;;
    1b)
      "$driver" --write-model 1b --out "$model" >&2
      cp "$realdata"/tokenizers/llama3.2/* "$model/"
      config=configs/stage2/llama-3.2-1b.yaml ;;
    *) echo "bench/run.sh: unknown shape '$shape' (small, smollm2, 1b)" >&2; exit 2 ;;
  esac
  export_dir=$work/$shape-export
  (cd "$root" && "$bireco" export --checkpoint "$model" --config "$config" --set text.max_length=512 \
    --set model.path="$model" --out "$export_dir") >&2
  case $device/$shape/$quick in
    cuda/*) b1=8 b2=32 texts=512 st=$steps ;;
    cpu/1b/*) b1=2 b2=4 texts=16 st=1 ;;
    cpu/smollm2/1) b1=2 b2=4 texts=32 st=$steps ;;
    cpu/*/1) b1=4 b2=8 texts=64 st=$steps ;;
    cpu/smollm2/*) b1=4 b2=8 texts=64 st=$steps ;;
    cpu/*) b1=8 b2=16 texts=128 st=$steps ;;
  esac
  [ -z "$sizes_override" ] || IFS=, read -r b1 b2 texts <<< "$sizes_override"
  n=$((warmup + st))
  "$PYTHON" "$root/bench/workload.py" --export "$export_dir" --data "$scifact" --batch "$b1" --batches "$n" \
    --texts "$texts" --out "$work/$shape-w1.json" | sed "s|^workload [^:]*:|$shape stage I:|" >> "$sizes"
  "$PYTHON" "$root/bench/workload.py" --export "$export_dir" --data "$scifact" --batch "$b2" --batches "$n" \
    --texts "$texts" --out "$work/$shape-w2.json" | sed "s|^workload [^:]*:|$shape stage II / embed:|" >> "$sizes"
  chunk=$(( b2 >= 4 ? b2 / 4 : 1 ))
  echo "$shape: $warmup warm-up + $st timed step(s) x $rounds round(s); GradCache chunk $chunk; embed batches: bireco 16384 padded tokens, sentence-transformers 32 rows" >> "$sizes"
  steps_args=(--warmup "$warmup" --steps "$st")

  # 3. The rows, the two sides alternating.
  stage1_fits=1
  if [ "$shape" = 1b ] && [ $device = cpu ] && [ "$mem_gb" -lt 48 ]; then stage1_fits=0; fi
  if [ $stage1_fits = 0 ]; then
    echo "$shape: stage I skipped: $mem_gb GB available, fp32 full fine-tuning of 1.2B parameters needs ~20 GB per process before activations" | tee -a "$sizes" >&2
  else
    for r in $(seq 1 "$rounds"); do
      measure "stage1-$shape" bireco "$model" "$driver" --stage 1 --model "$model" --workload "$work/$shape-w1.json" \
        --dtype "$dtype" "${common[@]}" "${steps_args[@]}"
      measure "stage1-$shape" hf "$model" "${ref[@]}" --stage 1 --model "$model" --workload "$work/$shape-w1.json" \
        "${common[@]}" "${steps_args[@]}"
    done
  fi
  for r in $(seq 1 "$rounds"); do
    measure "stage2-$shape" bireco "$model" "$driver" --stage 2 --model "$model" --workload "$work/$shape-w2.json" \
      --dtype "$dtype" "${common[@]}" "${steps_args[@]}"
    measure "stage2-$shape" hf "$model" "${ref[@]}" --stage 2 --model "$model" --workload "$work/$shape-w2.json" \
      "${common[@]}" "${steps_args[@]}"
    measure "stage2-$shape" gradcache "$model" "$driver" --stage 2 --model "$model" --workload "$work/$shape-w2.json" \
      --dtype "$dtype" --gradcache-chunk "$chunk" "${common[@]}" "${steps_args[@]}"
    measure "stage2-$shape" gradcache-keep "$model" "$driver" --stage 2 --model "$model" --workload "$work/$shape-w2.json" \
      --dtype "$dtype" --gradcache-chunk "$chunk" --gradcache-recompute 0 "${common[@]}" "${steps_args[@]}"
  done
  if [ $profile = 1 ]; then
    for stage in 1 2; do
      [ $stage = 1 ] && [ $stage1_fits = 0 ] && continue
      "$driver" --stage $stage --model "$model" --workload "$work/$shape-w$stage.json" --dtype "$dtype" \
        "${common[@]}" "${steps_args[@]}" --profile "$out_dir/profile-stage$stage-$shape-bireco.json" > /dev/null 2>&1
      "${ref[@]}" --stage $stage --model "$model" --workload "$work/$shape-w$stage.json" "${common[@]}" \
        "${steps_args[@]}" --profile "$out_dir/profile-stage$stage-$shape-hf.json" > /dev/null 2>&1
      "$PYTHON" "$root/bench/profile_ops.py" "$out_dir/profile-stage$stage-$shape-bireco.json" \
        "$out_dir/profile-stage$stage-$shape-hf.json" --title "stage$stage-$shape" >> "$out_dir/profile.md"
    done
  fi
  for r in $(seq 1 "$rounds"); do
    save=()
    [ "$r" = 1 ] && save=(--save-embeddings "$out_dir/embed-$shape-bireco.npy")
    measure "embed-$shape" bireco "$model" "$driver" --stage embed --model "$export_dir" --workload "$work/$shape-w2.json" \
      --dtype "$dtype" "${common[@]}" "${steps_args[@]}" "${save[@]}"
    [ "$r" = 1 ] && save=(--save-embeddings "$out_dir/embed-$shape-st.npy")
    measure "embed-$shape" sentence-transformers "$model" "${ref[@]}" --stage embed --model "$export_dir" \
      --workload "$work/$shape-w2.json" "${common[@]}" "${steps_args[@]}" "${save[@]}"
  done
  cp "$work/$shape-w1.json" "$work/$shape-w2.json" "$out_dir/"
  [ "$model" = "$work/$shape" ] && rm -rf "$model"
  rm -rf "$export_dir"
done

# Tokenizer: bireco's own byte-fallback BPE on Llama-2's tokenizer.json against Python
# sentencepiece on the same vocabulary's tokenizer.model, on SciFact texts, one thread.
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
' "$scifact/corpus.jsonl" "$work/corpus.txt" "$n"
  echo "tokenize-llama2: $n SciFact documents, one thread, 1 warm-up + 3 passes" >> "$sizes"
  for r in $(seq 1 "$rounds"); do
    measure tokenize-llama2 bireco "" "$driver" --stage tokenize --tokenizer "$realdata/tokenizers/llama2-hf" \
      --corpus "$work/corpus.txt" --warmup 1 --steps 3
    measure tokenize-llama2 sentencepiece "" "$PYTHON" "$root/bench/reference/tokenize_sp.py" \
      --tokenizer "$realdata/tokenizers/llama2-sp/tokenizer.model" --corpus "$work/corpus.txt" --warmup 1 --steps 3
  done
else
  echo "bench/run.sh: no $realdata/tokenizers/llama2-sp or no Python sentencepiece: tokenizer benchmark skipped" >&2
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
versions=$("$PYTHON" -c 'import torch, transformers, peft, sentence_transformers as s
print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, sentence-transformers {s.__version__}")')
machine="$(uname -n), $cpu, reference malloc $reference_malloc, $(nproc) cores visible, $(awk '/MemTotal/ {print int($2 / 1048576)}' /proc/meminfo) GB, $threads threads per side, commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "${BIRECO_COMMIT:-?}")$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+uncommitted'), $versions, $(( ($(date +%s) - started) / 60 )) min, load average $load_start at the start and $(cut -d' ' -f1 /proc/loadavg) at the end (other processes on these cores slow both sides)"
[ "$device" = cuda ] && machine="$machine, $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
"$PYTHON" "$root/bench/collect.py" "$raw" "$out_dir/results.json" "$command_line" "$machine" "$sizes" | tee "$out_dir/table.md"
[ $profile = 0 ] || echo "operators' self time per side: $out_dir/profile.md" >&2
echo "$out_dir/results.json"
