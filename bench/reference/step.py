"""The PyTorch side of bench/run.sh: the same steps bench_train_step takes, written as a
competent PyTorch user would (bench/reference/model.py, no transformers), on the same HF
directory and the same inputs. Prints one JSON line (the fields bench_train_step prints).

  step.py --stage 1|2|embed --model DIR [--batch 4] [--query 32] [--doc 64] [--warmup 1]
          [--steps 3] [--threads 2] [--checkpointing 1] [--lora-dropout 0.05]
          [--texts 64] [--batch-tokens 4096] [--device cpu|cuda] [--dtype float32|bfloat16]
  step.py --stage tokenize --tokenizer tokenizer.model --corpus TEXTS.txt   (sentencepiece)

Stage I  (bireco objective::Reconstruction): each text's final hidden state at its last token
  (EOS) is the one-vector prefix at position 0 of the other text; token cross-entropy over the
  rebuilt text (EOS not predicted), loss = 0.8 * mean CE(doc -> query) + 0.2 * mean CE(query ->
  doc); all weights trained; gradient checkpointing per layer; logits of the labelled
  positions at once (F.cross_entropy).
Stage II (objective::Contrastive): LoRA r 16, alpha 32 on every projection; InfoNCE over
  cosine x 50 against in-batch positives + one hard negative each.
Both: AdamW (lr 4e-5, betas 0.9/0.999, eps 1e-8, weight decay 0), gradients clipped at 1.0.
"""
import argparse
import contextlib
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Llama  # noqa: E402


def bench_ids(rows, length, vocab, salt):
    """bench_train_step's bench_ids(): BOS, a fixed hash of (row, column, salt), EOS."""
    r = torch.arange(rows, dtype=torch.long).unsqueeze(1)
    t = torch.arange(length, dtype=torch.long).unsqueeze(0)
    ids = (r * 7919 + t * 104729 + salt * 31337) % (vocab - 3) + 3
    ids[:, 0] = 1
    ids[:, -1] = 2
    return ids


def embed_length(i, max_length):
    return 16 + (i * 37) % (max_length - 15)


def peak_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def last_token(hidden, mask):
    idx = (torch.arange(mask.shape[1], device=mask.device) * mask).amax(1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def stage1_loss(model, q_ids, q_mask, d_ids, d_mask, eos=2):
    def direction(src_ids, src_mask, tgt_ids, tgt_mask):
        prefix = last_token(model.forward_embeds(model.embed_tokens(src_ids), src_mask), src_mask)
        embeds = torch.cat((prefix.unsqueeze(1), model.embed_tokens(tgt_ids)), 1)
        mask = torch.cat((torch.ones_like(tgt_mask[:, :1]), tgt_mask), 1)
        hidden = model.forward_embeds(embeds, mask)[:, :-1]  # position t predicts token t
        keep = (tgt_mask != 0) & (tgt_ids != eos)
        logits = hidden[keep] @ model.head_weight().t()
        return F.cross_entropy(logits.float(), tgt_ids[keep])

    return 0.8 * direction(d_ids, d_mask, q_ids, q_mask) + 0.2 * direction(q_ids, q_mask, d_ids, d_mask)


def stage2_loss(model, blocks, scale=50.0):
    q, p, n = (F.normalize(last_token(model.forward_embeds(model.embed_tokens(i), m), m).float(), dim=-1)
               for i, m in blocks)
    scores = q @ torch.cat((p, n)).t() * scale
    return F.cross_entropy(scores, torch.arange(q.shape[0], device=q.device))


def run_train(a, model, device, dtype):
    V, B = model.config["vocab_size"], a.batch
    block = lambda length, salt: (bench_ids(B, length, V, salt).to(device),  # noqa: E731
                                  torch.ones(B, length, dtype=torch.long, device=device))
    q, d = block(a.query, 0), block(a.doc, 1)
    if a.stage == "2":
        model.add_lora(dropout=a.lora_dropout)
        model.to(device)
        n = block(a.doc, 2)
        compute = lambda: stage2_loss(model, (q, d, n))  # noqa: E731
        tokens = B * (a.query + 2 * a.doc)
    else:
        compute = lambda: stage1_loss(model, q[0], q[1], d[0], d[1])  # noqa: E731
        tokens = 2 * B * (a.query + a.doc) + 2 * B
    model.train()
    model.gradient_checkpointing = a.checkpointing
    params = [(n_, p) for n_, p in model.named_parameters() if p.requires_grad]
    no_decay = lambda n_: n_.endswith("bias") or "norm" in n_  # noqa: E731
    groups = [{"params": [p for n_, p in params if not no_decay(n_)], "weight_decay": 0.0},
              {"params": [p for n_, p in params if no_decay(n_)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=4e-5, betas=(0.9, 0.999), eps=1e-8)
    trainable = [p for _, p in params]
    steps, cpu, losses, phases = [], [], [], {"forward": [], "backward": [], "clip": [], "optimizer": []}
    for s in range(a.warmup + a.steps):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext():
            loss = compute()
        sync(device)
        t1 = time.perf_counter()
        loss.backward()
        sync(device)
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        sync(device)
        t25 = time.perf_counter()
        optimizer.step()
        sync(device)
        t3 = time.perf_counter()
        losses.append(loss.item())
        if s >= a.warmup:
            steps.append(t3 - t0)
            cpu.append(time.process_time() - c0)
            phases["forward"].append(t1 - t0)
            phases["backward"].append(t2 - t1)
            phases["clip"].append(t25 - t2)
            phases["optimizer"].append(t3 - t25)
    medians = {k: sorted(v)[len(v) // 2] for k, v in phases.items() if v}
    return {"steps_s": steps, "cpu_s": cpu, "tokens_per_step": tokens, "loss": losses, "phases_s": medians}


@torch.no_grad()
def run_embed(a, model, device):
    """Length-sorted batches under a padded-token budget, left padding, last token, L2 norm."""
    model.eval()
    V = model.config["vocab_size"]
    texts = [bench_ids(1, embed_length(i, a.doc), V, 3 + i)[0] for i in range(a.texts)]
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches, i = [], 0
    while i < len(order):
        longest, j = len(texts[order[i]]), i + 1
        while j < len(order) and (j - i + 1) * longest <= a.batch_tokens:
            j += 1
        batches.append(order[i:j])
        i = j
    tokens = sum(len(t) for t in texts)
    steps, out = [], None
    for s in range(a.warmup + a.steps):
        sync(device)
        t0 = time.perf_counter()
        out = torch.empty(len(texts), model.config["hidden_size"])
        for rows in batches:
            T = len(texts[rows[0]])
            ids = torch.zeros(len(rows), T, dtype=torch.long)
            mask = torch.zeros(len(rows), T, dtype=torch.long)
            for r, k in enumerate(rows):
                ids[r, T - len(texts[k]):] = texts[k]
                mask[r, T - len(texts[k]):] = 1
            ids, mask = ids.to(device), mask.to(device)
            h = model.forward_embeds(model.embed_tokens(ids), mask)[:, -1]  # left padded: last = EOS
            out[rows] = F.normalize(h.float(), dim=-1).cpu()
        sync(device)
        if s >= a.warmup:
            steps.append(time.perf_counter() - t0)
    return {"steps_s": steps, "tokens_per_step": tokens, "checksum": out.abs().sum().item(), "loss": [],
            "phases_s": {}}


def run_tokenize(a):
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=a.tokenizer)
    with open(a.corpus, encoding="utf-8") as f:
        texts = f.read().split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    steps, tokens = [], 0
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        tokens = sum(len(sp.encode(t)) for t in texts)
        if s >= a.warmup:
            steps.append(time.perf_counter() - t0)
    return {"steps_s": steps, "tokens_per_step": tokens, "loss": [], "phases_s": {}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--stage", required=True, choices=["1", "2", "embed", "tokenize"])
    p.add_argument("--model")
    p.add_argument("--tokenizer")
    p.add_argument("--corpus")
    for name, default in [("batch", 4), ("query", 32), ("doc", 64), ("warmup", 1), ("steps", 3), ("threads", 2),
                          ("checkpointing", 1), ("texts", 64), ("batch-tokens", 4096)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(2)
    device = torch.device(a.device)
    start = peak_mb(device)
    if a.stage == "tokenize":
        result = run_tokenize(a)
    else:
        dtype = torch.bfloat16 if a.dtype == "bfloat16" else torch.float32
        model = Llama.from_pretrained(a.model).to(device)
        if a.stage == "embed":
            result = run_embed(a, model.to(dtype), device)
        else:
            result = run_train(a, model, device, dtype)
    result.update({"impl": "reference", "stage": a.stage, "threads": torch.get_num_threads(),
                   "torch": torch.__version__, "peak_mb": peak_mb(device), "start_rss_mb": start})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
