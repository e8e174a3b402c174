"""MTEB, offline, on a bireco export gives bireco eval's nDCG@10.

  mteb_export_parity.py --bireco BIN (--model EXPORT_DIR | --source MODEL_DIR [--template T] [--max-length N] [--init-range S])
                        --data BEIR_DIR --work DIR [--max-corpus N]

A retrieval task defined from local BEIR files (corpus.jsonl, queries.jsonl, qrels/test.tsv; no hub),
run by the pinned `mteb` on SentenceTransformer(EXPORT_DIR) with the prompts the export carries, and
`bireco eval` on the same folder with the export's default instruction. --max-corpus keeps the judged
documents and the corpus's first others, up to N, --max-queries the first N judged queries (a smaller
folder both sides read). --source exports
MODEL_DIR first, as tests/train/export_hf_parity.py does. Prints both sides' nDCG@10, MRR@10, MAP@100 and
recall@100 and exits 1 when one differs by more than 1e-4.
"""

import argparse
import json
import os
import subprocess
import sys

TOLERANCE = 1e-4


def read_beir(folder):
    corpus, queries, qrels = {}, {}, {}
    with open(os.path.join(folder, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            corpus[j["_id"]] = {"title": j.get("title", ""), "text": j["text"]}
    with open(os.path.join(folder, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            queries[j["_id"]] = j["text"]
    with open(os.path.join(folder, "qrels", "test.tsv"), encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            q, d, score = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(score)
    return corpus, queries, qrels


def write_subset(folder, out, max_corpus, max_queries):
    corpus, queries, qrels = read_beir(folder)
    if max_queries > 0:
        qrels = dict(list(qrels.items())[:max_queries])
    judged = {d for docs in qrels.values() for d in docs}
    keep = [d for d in corpus if d in judged]
    keep += [d for d in corpus if d not in judged][: max(0, max_corpus - len(keep))]
    keep = set(keep)
    os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
    with open(os.path.join(out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for d, doc in corpus.items():
            if d in keep:
                f.write(json.dumps({"_id": d, **doc}, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for q in qrels:
            f.write(json.dumps({"_id": q, "text": queries[q]}, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "qrels", "test.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, docs in qrels.items():
            for d, s in docs.items():
                f.write(f"{q}\t{d}\t{s}\n")


def local_task(folder):
    """A custom AbsTaskRetrieval whose data are the BEIR files in `folder` (mteb's v1 layout, converted)."""
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    class LocalBeirRetrieval(AbsTaskRetrieval):
        # bireco eval drops a document whose id is the query's (--keep-identical-ids keeps it).
        ignore_identical_ids = True
        metadata = TaskMetadata(
            name="LocalBeirRetrieval",
            dataset={"path": "local/" + os.path.basename(os.path.abspath(folder)), "revision": "local"},
            description="A BEIR folder read from local files.",
            reference=None,
            type="Retrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=["test"],
            eval_langs=["eng-Latn"],
            main_score="ndcg_at_10",
            date=None,
            domains=None,
            task_subtypes=None,
            license=None,
            annotations_creators=None,
            dialect=None,
            sample_creation=None,
            bibtex_citation="",
        )

        def load_data(self, num_proc=None, **kwargs):
            if self.data_loaded:
                return
            corpus, queries, qrels = read_beir(folder)
            self.corpus = {"test": corpus}
            self.queries = {"test": queries}
            self.relevant_docs = {"test": qrels}
            self.convert_v1_dataset_format_to_v2(num_proc)
            self.data_loaded = True

    return LocalBeirRetrieval()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bireco", required=True)
    p.add_argument("--model")
    p.add_argument("--source")
    p.add_argument("--template", default="{text}")
    p.add_argument("--add-eos", type=int, default=1)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--data", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--max-corpus", type=int, default=0)
    p.add_argument("--max-queries", type=int, default=0)
    p.add_argument("--init-range", type=float, default=0.0,
                   help="with --source without weights: the random initialiser's standard deviation")
    args = p.parse_args()
    import mteb
    import torch
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    if args.source:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
        from export_hf_parity import make_source, run

        make_source(args, os.path.join(args.work, "source"))
        args.model = os.path.join(args.work, "export")
        run([args.bireco, "export", "--checkpoint", os.path.join(args.work, "source"), "--out", args.model])
    data = args.data
    if args.max_corpus > 0 or args.max_queries > 0:
        data = os.path.join(args.work, "beir")
        write_subset(args.data, data, args.max_corpus, args.max_queries)
    with open(os.path.join(args.model, "bireco_embedding.json")) as f:
        instruction = json.load(f).get("_default_instruction", "")
    out = os.path.join(args.work, "bireco_eval.json")
    cmd = [args.bireco, "eval", "--model", args.model, "--task", "retrieval", "--data", data,
           "--out", out, "--device", "cpu", "--instruction", instruction]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    with open(out) as f:
        ours = json.load(f)["scores"]

    # What the export's README shows: the export as it is, MTEB's own wrapper, no cache.
    model = SentenceTransformerEncoderWrapper(SentenceTransformer(args.model, device="cpu"))
    results = mteb.evaluate(model, local_task(data), cache=None, show_progress_bar=False)
    theirs = results.task_results[0].scores["test"][0]
    worst = 0.0
    for metric in ("ndcg_at_10", "mrr_at_10", "map_at_100", "recall_at_100"):
        diff = abs(ours[metric] - theirs[metric])
        worst = max(worst, diff)
        print(f"{metric} bireco={ours[metric]:.6f} mteb={theirs[metric]:.6f} diff={diff:.2e}")
    if ours["ndcg_at_10"] <= 0:
        sys.exit("nDCG@10 is 0: the comparison would check nothing")
    if not worst <= TOLERANCE:
        sys.exit(f"MTEB and bireco eval differ by more than {TOLERANCE}")
    print("mteb matches bireco eval")


if __name__ == "__main__":
    main()
