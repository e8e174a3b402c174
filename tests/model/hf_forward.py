"""transformers' outputs for the rows of an ids.json, in the layout `bireco forward` writes.

    python hf_forward.py MODEL_DIR IDS_JSON DTYPE OUT_SAFETENSORS

DTYPE is float32 or bfloat16 (the weights are loaded in it and computed in it, as a user of
transformers would). Rows are right-padded; last_hidden_state and logits are zero at padding,
embedding is the last real token's final hidden state. Everything is written as float32.
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def main(model_dir, ids_json, dtype, out):
    torch.manual_seed(0)
    rows = json.load(open(ids_json))["input_ids"]
    length = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype), attn_implementation="sdpa")
    model.eval()
    with torch.no_grad():
        out_ = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    hidden = out_.hidden_states[-1].float()  # after the final norm, as the model's last_hidden_state
    keep = mask.unsqueeze(-1).float()
    last = mask.sum(1) - 1
    save_file(
        {
            "last_hidden_state": (hidden * keep).contiguous(),
            "logits": (out_.logits.float() * keep).contiguous(),
            "embedding": hidden[torch.arange(len(rows)), last].contiguous(),
        },
        out,
    )


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
