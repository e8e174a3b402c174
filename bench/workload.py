"""The work both sides of bench/run.sh do, from real data: batches of SciFact claims (queries,
with the export's query prompt), their judged positive abstracts and one other abstract each
as hard negative, tokenised by an export's tokenizer.json (`bireco export --config ...`: its
post-processor adds BOS, the embedding template and EOS as bireco does, and truncation to
max_seq_length keeps them), plus document strings for the embedding rows. Deterministic for a
seed. bench_train_step (--workload) and bench/reference/hf_step.py read the same file.

  workload.py --export DIR --data BEIR_DIR --batch B [--batches 4] [--seed 1] [--texts 64]
              --out FILE
  workload.py --synthetic B,TQ,TD --vocab V [--batches 4] --out FILE
      fixed lengths (every text TQ or TD tokens of a fixed hash, BOS 1 .. EOS 2): the GPU's
      "sequence 512" MFU check, where the shape, not the data, is the point

FILE: {"source", "eos_id", "pad_id", "max_length",
       "batches": [{"queries": [[ids]], "positives": [[ids]], "negatives": [[ids]]}],
       "texts": [document strings], "text_tokens": [their token counts]}
Token counts are real tokens (no padding): what tokens/s is computed from.
"""
import argparse
import json
import os
import random


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path):
    """query id -> [corpus ids with score > 0], in file order."""
    out = {}
    with open(path, encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            q, d, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                out.setdefault(q, []).append(d)
    return out


def document_text(doc):
    """What SciFact's documents are embedded as (tests/train/export_hf_parity.py: the same)."""
    return (doc.get("title", "") + " " + doc.get("text", "")).strip()


def real_workload(a):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(a.export)
    with open(os.path.join(a.export, "sentence_bert_config.json")) as f:
        max_length = json.load(f)["max_seq_length"]
    with open(os.path.join(a.export, "config_sentence_transformers.json")) as f:
        query_prompt = json.load(f).get("prompts", {}).get("query", "")

    corpus = {d["_id"]: d for d in read_jsonl(os.path.join(a.data, "corpus.jsonl"))}
    queries = {q["_id"]: q["text"] for q in read_jsonl(os.path.join(a.data, "queries.jsonl"))}
    qrels = read_qrels(os.path.join(a.data, "qrels", "train.tsv"))
    ids = sorted((q for q in qrels if q in queries and any(d in corpus for d in qrels[q])), key=int)
    rng = random.Random(a.seed)
    rng.shuffle(ids)
    doc_ids = sorted(corpus, key=int)

    def encode(texts):
        # The tokenizer's own call, as sentence-transformers makes it: special tokens (the
        # template) from the post-processor, truncation keeping them.
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]

    batches, at = [], 0
    for _ in range(a.batches):
        qs, ps, ns, used = [], [], [], set()
        while len(qs) < a.batch:
            if at == len(ids):
                raise SystemExit(f"workload.py: SciFact train has too few queries for {a.batches} x {a.batch}")
            q = ids[at]
            at += 1
            positive = next(d for d in qrels[q] if d in corpus)
            if positive in used:  # distinct positives in a batch: no false in-batch negatives
                continue
            used.add(positive)
            negative = positive
            while negative in qrels[q]:
                negative = rng.choice(doc_ids)
            qs.append(query_prompt + queries[q])
            ps.append(document_text(corpus[positive]))
            ns.append(document_text(corpus[negative]))
        batches.append({"queries": encode(qs), "positives": encode(ps), "negatives": encode(ns)})

    texts = [document_text(corpus[d]) for d in rng.sample(doc_ids, a.texts)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return {"source": f"{a.data} (train qrels, seed {a.seed}) tokenised by {a.export}",
            "eos_id": tokenizer.eos_token_id, "pad_id": pad, "max_length": max_length,
            "query_prompt": query_prompt, "batches": batches, "texts": texts,
            "text_tokens": [len(x) for x in encode(texts)]}


def synthetic_workload(a):
    """Fixed lengths, ids from bench_train_step's old hash (BOS 1, EOS 2 at the ends)."""
    B, TQ, TD = (int(x) for x in a.synthetic.split(","))

    def block(length, salt):
        return [[1] + [(r * 7919 + t * 104729 + salt * 31337) % (a.vocab - 3) + 3 for t in range(1, length - 1)] + [2]
                for r in range(B)]

    batches = [{"queries": block(TQ, 3 * i), "positives": block(TD, 3 * i + 1), "negatives": block(TD, 3 * i + 2)}
               for i in range(a.batches)]
    return {"source": f"synthetic {B} x ({TQ}, {TD}) over vocabulary {a.vocab}", "eos_id": 2, "pad_id": 0,
            "max_length": max(TQ, TD), "query_prompt": "", "batches": batches, "texts": [], "text_tokens": []}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--export")
    p.add_argument("--data")
    p.add_argument("--synthetic")
    p.add_argument("--vocab", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--texts", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    w = synthetic_workload(a) if a.synthetic else real_workload(a)
    with open(a.out, "w") as f:
        json.dump(w, f)
    lengths = lambda key: [len(x) for b in w["batches"] for x in b[key]]  # noqa: E731
    q, d = lengths("queries"), lengths("positives") + lengths("negatives")
    print(f"workload {a.out}: {len(w['batches'])} batches x {len(w['batches'][0]['queries'])}, "
          f"query tokens {min(q)}-{max(q)} (mean {sum(q) / len(q):.0f}), document tokens {min(d)}-{max(d)} "
          f"(mean {sum(d) / len(d):.0f}), {len(w['texts'])} embedding texts"
          + (f" ({sum(w['text_tokens'])} tokens)" if w["texts"] else ""))


if __name__ == "__main__":
    main()
