"""The reference of bench/run.sh's tokenizer row: Python sentencepiece encoding one text at a
time (what bench_train_step --stage tokenize does with bireco's tokenizer on the same
vocabulary's tokenizer.json). Prints one JSON line in bench_train_step's fields.

  tokenize_sp.py --tokenizer tokenizer.model --corpus TEXTS.txt [--warmup 1] [--steps 3]
"""
import argparse
import json
import resource
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=a.tokenizer)
    with open(a.corpus, encoding="utf-8") as f:
        texts = f.read().split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    steps, tokens = [], []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        n = sum(len(sp.encode(t)) for t in texts)
        if s >= a.warmup:
            steps.append(time.perf_counter() - t0)
            tokens.append(n)
    print(json.dumps({"steps_s": steps, "tokens": tokens, "loss": [], "phases_s": {}, "impl": "sentencepiece",
                      "stage": "tokenize", "sentencepiece": sentencepiece.__version__,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


if __name__ == "__main__":
    main()
