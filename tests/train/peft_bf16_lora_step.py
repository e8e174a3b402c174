"""The reference for Bf16MixedLora.LossAndAdapterGradientsMatchPeftUnderBf16Autocast: the stage-II
LoRA step as transformers + PEFT run it under bf16-mixed precision.

transformers loads MODEL_DIR in bfloat16; PEFT adds LoRA r 4 / alpha 8 on all seven projections,
in float32 (its autocast_adapter_dtype default); lora_B is randomised so that the adapters matter,
and the adapter is saved to OUT/adapter. Under torch.autocast("cpu", bfloat16): last-token
embeddings of 4 random unpadded texts, cosine InfoNCE at scale 50 of texts 0,1 (queries) against
2,3 (documents); backward outside autocast, as HF's Trainer does. OUT/reference.safetensors holds
input_ids, loss and grad.<PEFT name> of every adapter tensor.

  python peft_bf16_lora_step.py MODEL_DIR OUT"""
import os
import sys

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModel

model_dir, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
base = AutoModel.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa")
config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="FEATURE_EXTRACTION",
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
model = get_peft_model(base, config)
adapters = {n: p for n, p in model.named_parameters() if "lora_" in n}
assert adapters and all(p.dtype == torch.float32 for p in adapters.values()), "PEFT did not keep fp32 adapters"
assert all(p.dtype == torch.bfloat16 for n, p in model.named_parameters() if "lora_" not in n)
with torch.no_grad():
    for n, p in adapters.items():
        if "lora_B" in n:
            p.normal_(0.0, 0.05)
model.save_pretrained(os.path.join(out, "adapter"))
model.train()

ids = torch.randint(3, base.config.vocab_size, (4, 12))
with torch.autocast("cpu", dtype=torch.bfloat16):
    hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[:, -1]  # (B, C)
    e = F.normalize(hidden.float(), dim=-1)
    scores = 50.0 * e[:2] @ e[2:].T
    loss = F.cross_entropy(scores, torch.arange(2))
loss.backward()
tensors = {"input_ids": ids, "loss": loss.detach().reshape(1)}
for n, p in adapters.items():
    # PEFT's saved names: no adapter name ("default"), ".weight" kept.
    tensors["grad." + n.replace(".default", "")] = p.grad.contiguous()
save_file(tensors, os.path.join(out, "reference.safetensors"))
print(f"loss {loss.item():.6f}, {len(adapters)} adapter tensors")
