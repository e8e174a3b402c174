"""GPU reference as users of the authors' code run it: Hugging Face transformers' own model
classes (attn_implementation="sdpa", bf16 weights), PEFT LoRA for stage II, transformers'
gradient checkpointing, the LM loss through `labels=` (all logits materialised), and
sentence-transformers for embedding throughput. Same inputs, objectives, optimizer and JSON
line as bench/reference/step.py.

UNTESTED: written without a GPU (bench/run.sh runs it only when CUDA is visible); needs
torch 2.x, transformers, peft and (for --stage st-embed) sentence-transformers.

  hf_step.py --stage 1|2|embed|st-embed --model DIR [--batch 8] [--query 512] [--doc 512]
             [--warmup 1] [--steps 3] [--texts 512] [--batch-tokens 4096] [--lora-dropout 0.05]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step import bench_ids, embed_length, last_token  # noqa: E402

DEVICE = torch.device("cuda")


def sync():
    torch.cuda.synchronize(DEVICE)


def blocks(a, vocab):
    def block(length, salt):
        return (bench_ids(a.batch, length, vocab, salt).to(DEVICE),
                torch.ones(a.batch, length, dtype=torch.long, device=DEVICE))
    return block(a.query, 0), block(a.doc, 1), block(a.doc, 2)


def stage1(a):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16, attn_implementation="sdpa").to(DEVICE)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    (q, qm), (d, dm), _ = blocks(a, model.config.vocab_size)

    def direction(src, src_mask, tgt, tgt_mask):
        hidden = model.model(input_ids=src, attention_mask=src_mask).last_hidden_state
        prefix = last_token(hidden, src_mask)
        embeds = torch.cat((prefix.unsqueeze(1), model.get_input_embeddings()(tgt)), 1)
        mask = torch.cat((torch.ones_like(tgt_mask[:, :1]), tgt_mask), 1)
        labels = torch.where((tgt_mask != 0) & (tgt != 2), tgt, torch.full_like(tgt, -100))
        labels = torch.cat((torch.full_like(labels[:, :1], -100), labels), 1)  # HF shifts by one
        return model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss

    compute = lambda: 0.8 * direction(d, dm, q, qm) + 0.2 * direction(q, qm, d, dm)  # noqa: E731
    return model, compute, 2 * a.batch * (a.query + a.doc) + 2 * a.batch


def stage2(a):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    base = AutoModel.from_pretrained(a.model, torch_dtype=torch.bfloat16, attn_implementation="sdpa").to(DEVICE)
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False
    model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, lora_dropout=a.lora_dropout, task_type="FEATURE_EXTRACTION",
                                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                            "up_proj", "down_proj"]))
    model.train()
    texts = blocks(a, base.config.vocab_size)

    def compute():
        q, p, n = (F.normalize(last_token(model(input_ids=i, attention_mask=m).last_hidden_state, m).float(), dim=-1)
                   for i, m in texts)
        scores = q @ torch.cat((p, n)).t() * 50.0
        return F.cross_entropy(scores, torch.arange(q.shape[0], device=DEVICE))

    return model, compute, a.batch * (a.query + 2 * a.doc)


def train(a):
    model, compute, tokens = stage1(a) if a.stage == "1" else stage2(a)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=4e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    steps, losses, phases = [], [], {"forward": [], "backward": [], "clip": [], "optimizer": []}
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = compute()
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        sync()
        t3 = time.perf_counter()
        optimizer.step()
        sync()
        t4 = time.perf_counter()
        losses.append(loss.item())
        if s >= a.warmup:
            steps.append(t4 - t0)
            for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k].append(v)
    return {"steps_s": steps, "tokens_per_step": tokens, "loss": losses,
            "phases_s": {k: sorted(v)[len(v) // 2] for k, v in phases.items() if v}}


@torch.no_grad()
def embed(a):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(a.model, torch_dtype=torch.bfloat16, attn_implementation="sdpa").to(DEVICE).eval()
    V = model.config.vocab_size
    texts = [bench_ids(1, embed_length(i, a.doc), V, 3 + i)[0] for i in range(a.texts)]
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    steps = []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        i = 0
        while i < len(order):
            T = len(texts[order[i]])
            rows = order[i:i + max(1, a.batch_tokens // T)]
            ids = torch.zeros(len(rows), T, dtype=torch.long)
            mask = torch.zeros(len(rows), T, dtype=torch.long)
            for r, k in enumerate(rows):
                ids[r, T - len(texts[k]):] = texts[k]
                mask[r, T - len(texts[k]):] = 1
            h = model(input_ids=ids.to(DEVICE), attention_mask=mask.to(DEVICE)).last_hidden_state[:, -1]
            F.normalize(h.float(), dim=-1).cpu()
            i += len(rows)
        sync()
        if s >= a.warmup:
            steps.append(time.perf_counter() - t0)
    return {"steps_s": steps, "tokens_per_step": sum(len(t) for t in texts), "loss": [], "phases_s": {}}


def st_embed(a):
    """sentence-transformers' encode (its own length sorting, batch_size rows) on texts decoded
    from the same ids; needs tokenizer files in the model directory (run.sh copies them)."""
    from sentence_transformers import SentenceTransformer, models

    word = models.Transformer(a.model, model_args={"torch_dtype": torch.bfloat16, "attn_implementation": "sdpa"},
                              tokenizer_args={"padding_side": "left"})
    if word.tokenizer.pad_token is None:
        word.tokenizer.pad_token = word.tokenizer.eos_token
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="lasttoken")
    st = SentenceTransformer(modules=[word, pool, models.Normalize()], device="cuda")
    V = min(word.tokenizer.vocab_size, word.auto_model.config.vocab_size)
    texts = [word.tokenizer.decode(bench_ids(1, embed_length(i, a.doc), V, 3 + i)[0, 1:-1]) for i in range(a.texts)]
    tokens = sum(len(x) for x in word.tokenizer(texts, truncation=True, max_length=a.doc)["input_ids"])
    steps = []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        st.encode(texts, batch_size=max(1, a.batch_tokens // a.doc), convert_to_numpy=True)
        sync()
        if s >= a.warmup:
            steps.append(time.perf_counter() - t0)
    return {"steps_s": steps, "tokens_per_step": tokens, "loss": [], "phases_s": {}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--stage", required=True, choices=["1", "2", "embed", "st-embed"])
    p.add_argument("--model", required=True)
    for name, default in [("batch", 8), ("query", 512), ("doc", 512), ("warmup", 1), ("steps", 3), ("texts", 512),
                          ("batch-tokens", 4096), ("threads", 0), ("checkpointing", 1)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    a = p.parse_args()
    torch.manual_seed(2)
    torch.cuda.reset_peak_memory_stats(DEVICE)
    run = {"1": train, "2": train, "embed": embed, "st-embed": st_embed}[a.stage]
    result = run(a)
    result.update({"impl": "hf", "stage": a.stage, "torch": torch.__version__,
                   "peak_mb": torch.cuda.max_memory_allocated(DEVICE) / 2**20})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
