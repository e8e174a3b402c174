"""The reference side of bench/run.sh: the Python stack users of the authors' code run, with
nothing of our own beyond the loss lines the authors wrote. transformers' model classes
(attn_implementation="sdpa", gradient checkpointing without reentrancy), PEFT LoRA for stage
II, torch.optim.AdamW, and sentence-transformers' encode for embedding. Reads the batches of
bench/workload.py (the same file bench_train_step reads) and prints one JSON line with the
fields bench_train_step prints. CPU: float32; CUDA: bfloat16 weights (as bench_train_step
--dtype bfloat16). Peak memory: peak RSS on the CPU, max allocated on CUDA.

  hf_step.py --stage 1|2 --model DIR --workload FILE [--warmup 1] [--steps 2] [--threads 2]
             [--device cpu|cuda] [--lora-dropout 0.05] [--checkpointing 1] [--profile FILE]
  hf_step.py --stage embed --model EXPORT_DIR --workload FILE [--batch-size 32]
             [--save-embeddings FILE.npy]

Stage I  (the authors' EBQ2D / EBD2Q, full fine-tuning): the base model encodes the source;
  its last real token's final hidden state is the prefix; inputs_embeds = [prefix, embed(target)],
  labels = target with padding and EOS set to -100 and -100 for the prefix slot (the model
  shifts labels by one), model(inputs_embeds=, attention_mask=, labels=).loss (all logits,
  CrossEntropyLoss mean); loss = 0.8 * d2q + 0.2 * q2d.
Stage II (InfoNCE): AutoModel + PEFT LoRA r 16 alpha 32 on the seven projections, last-token
  pooling, cosine x 50 against the batch's positives and hard negatives, cross-entropy mean.
Both: AdamW (lr 4e-5, betas 0.9/0.999, eps 1e-8, weight decay 0), gradients clipped at 1.0.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peak_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def checkpointing(model, on):
    """Gradient checkpointing per decoder layer, non-reentrant; transformers 5.24 renamed the
    call (the old name warns), the GPU machine's 5.17 has only the old one."""
    model.config.use_cache = False
    if not on:
        return
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def pad_right(rows, pad_id, device):
    """(ids, mask), padded to the longest row on the RIGHT. The authors pad left; transformers
    then counts positions over the padding (position_ids default to arange), which changes the
    numbers, not the work. On the right, real tokens sit at positions 0..n-1 as in bireco (whose
    positions come from the mask), so the first-step losses of both sides agree."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids.to(device), mask.to(device)


def last_token(hidden, mask):
    """Each row's last real token (right padding): (B, T, C) -> (B, C)."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), mask.sum(1) - 1]


def stage1(a, w, device, dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype, attn_implementation="sdpa").to(device)
    checkpointing(model, a.checkpointing)
    model.train()
    eos = w["eos_id"]

    def direction(src, src_mask, tgt, tgt_mask):
        prefix = last_token(model.model(input_ids=src, attention_mask=src_mask).last_hidden_state, src_mask)
        embeds = torch.cat((prefix.unsqueeze(1), model.get_input_embeddings()(tgt)), 1)  # (B, 1 + T, C)
        mask = torch.cat((torch.ones_like(tgt_mask[:, :1]), tgt_mask), 1)
        labels = tgt.masked_fill((tgt_mask == 0) | (tgt == eos), -100)
        labels = torch.cat((torch.full_like(labels[:, :1], -100), labels), 1)  # the prefix slot
        return model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss

    def compute(batch):
        (q, qm), (d, dm) = batch["queries"], batch["positives"]
        return 0.8 * direction(d, dm, q, qm) + 0.2 * direction(q, qm, d, dm)

    return model, compute


def stage2(a, w, device, dtype):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    base = AutoModel.from_pretrained(a.model, dtype=dtype, attn_implementation="sdpa").to(device)
    checkpointing(base, a.checkpointing)
    model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, lora_dropout=a.lora_dropout,
                                            target_modules=TARGETS, task_type="FEATURE_EXTRACTION"))
    model.train()

    def compute(batch):
        q, p, n = (F.normalize(last_token(model(input_ids=i, attention_mask=m).last_hidden_state, m).float(), dim=-1)
                   for i, m in (batch["queries"], batch["positives"], batch["negatives"]))
        scores = q @ torch.cat((p, n)).t() * 50.0  # (B, 2B): in-batch positives, then hard negatives
        return F.cross_entropy(scores, torch.arange(q.shape[0], device=q.device))

    return model, compute


def batch_tokens(stage, b):
    """Real tokens through the model: stage I encodes both texts and rebuilds both (each with its
    prefix slot); stage II encodes query, positive and hard negative once."""
    q, p, n = (sum(len(r) for r in b[k]) for k in ("queries", "positives", "negatives"))
    return 2 * (q + p) + 2 * len(b["queries"]) if stage == "1" else q + p + n


def train(a, w, device, dtype):
    model, compute = stage1(a, w, device, dtype) if a.stage == "1" else stage2(a, w, device, dtype)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=4e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    keys = ("queries", "positives") + (("negatives",) if a.stage == "2" else ())
    raw = [w["batches"][s % len(w["batches"])] for s in range(a.warmup + a.steps)]
    batches = [{k: pad_right(b[k], w["pad_id"], device) for k in keys} for b in raw]
    start = rss_mb()
    steps, tokens, losses = [], [], []
    phases = {"forward": [], "backward": [], "clip": [], "optimizer": []}
    profiler = None
    for s, batch in enumerate(batches):
        if a.profile and s == a.warmup:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=False)
            profiler.__enter__()
        sync(device)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = compute(batch)
        sync(device)
        t1 = time.perf_counter()
        loss.backward()
        sync(device)
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        sync(device)
        t3 = time.perf_counter()
        optimizer.step()
        sync(device)
        t4 = time.perf_counter()
        if profiler is not None:
            profiler.__exit__(None, None, None)
            # Self time per operator, the form bench/op_profile.h writes for bireco (bench/profile_ops.py).
            ops = [{"name": e.key, "self_us": e.self_cpu_time_total, "calls": e.count}
                   for e in profiler.key_averages()]
            with open(a.profile, "w") as f:
                json.dump({"impl": "hf", "step_s": t4 - t0, "ops": ops}, f)
            profiler = None
        losses.append(loss.item())
        if s >= a.warmup:
            steps.append(t4 - t0)
            tokens.append(batch_tokens(a.stage, raw[s]))
            for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k].append(v)
    return {"steps_s": steps, "tokens": tokens, "loss": losses, "loaded_rss_mb": start,
            "phases_s": {k: sorted(v)[len(v) // 2] for k, v in phases.items() if v}}


def embed(a, w, device, dtype):
    """sentence-transformers' encode of the workload's document strings: its own tokenisation,
    length sorting and batches of --batch-size rows (its default 32), in the timed region."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(a.model, device=device.type, model_kwargs={"dtype": dtype})
    texts = w["texts"]
    start = rss_mb()
    steps, e = [], None
    for s in range(a.warmup + a.steps):
        sync(device)
        t0 = time.perf_counter()
        e = st.encode(texts, batch_size=a.batch_size, convert_to_numpy=True)
        sync(device)
        if s >= a.warmup:
            steps.append(time.perf_counter() - t0)
    if a.save_embeddings:
        np.save(a.save_embeddings, e.astype(np.float32))
    return {"steps_s": steps, "tokens": [sum(w["text_tokens"])] * len(steps), "loss": [], "phases_s": {},
            "checksum": float(np.abs(e.astype(np.float64)).sum()), "loaded_rss_mb": start}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--stage", required=True, choices=["1", "2", "embed"])
    p.add_argument("--model", required=True)
    p.add_argument("--workload", required=True)
    for name, default in [("warmup", 1), ("steps", 2), ("threads", 2), ("batch-size", 32),
                          ("checkpointing", 1)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--save-embeddings")
    p.add_argument("--profile", help="self time per operator over the first timed step (torch.profiler), as JSON")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(2)
    device = torch.device(a.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with open(a.workload) as f:
        w = json.load(f)
    start = rss_mb()
    result = (embed if a.stage == "embed" else train)(a, w, device, dtype)
    import transformers

    result.update({"impl": "sentence-transformers" if a.stage == "embed" else "hf", "stage": a.stage,
                   "threads": torch.get_num_threads(), "torch": torch.__version__,
                   "transformers": transformers.__version__, "dtype": str(dtype).replace("torch.", ""),
                   "peak_mb": peak_mb(device), "start_rss_mb": start})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
