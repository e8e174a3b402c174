#!/usr/bin/python3
"""Retrieval metrics of a TREC run as MTEB (and BEIR's EvaluateRetrieval) compute them, with
pytrec_eval (pytrec-eval-terrier in the pinned Python stack): ndcg_cut.10, map_cut.100,
recall.100, and MRR@10 as recip_rank over each query's top 10 (trec_eval's order: score
descending, equal scores by docid descending).

  pytrec_eval_metrics.py QRELS.tsv RUN.trec -> JSON {ndcg_at_10, mrr_at_10, map_at_100, recall_at_100}

The qrels file may have BEIR's header row (a first line whose score is not an integer).
"""
import json
import sys

import pytrec_eval

from reference_metrics import read_qrels  # this folder's, BEIR header detected


def read_run(path):
    run = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            qid, _, docid, _, score, _ = line.split()
            run.setdefault(qid, {})[docid] = float(score)
    return run


def mean(per_query, measure):
    values = [m[measure] for m in per_query.values()]
    return sum(values) / len(values)


def main(qrels_path, run_path):
    qrels, run = read_qrels(qrels_path), read_run(run_path)
    scores = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map_cut.100", "recall.100"}).evaluate(run)
    top10 = {}
    for qid, docs in run.items():
        by_docid = sorted(docs.items(), key=lambda d: d[0].encode(), reverse=True)
        ranked = sorted(by_docid, key=lambda d: -d[1])[:10]  # stable: ties keep docid descending
        top10[qid] = dict(ranked)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    print(json.dumps({"ndcg_at_10": mean(scores, "ndcg_cut_10"), "map_at_100": mean(scores, "map_cut_100"),
                      "recall_at_100": mean(scores, "recall_100"), "mrr_at_10": mean(rr, "recip_rank"),
                      "queries": len(scores)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
