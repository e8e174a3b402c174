#!/usr/bin/python3
"""scripts/reproduce.sh's report: results.json, results.md and results.png in OUT.

    reproduce_report.py OUT "SEEDS" MODE MINUTES COMMIT

Reads OUT/untrained/{scifact,stsb}.json and OUT/seed<S>/<arm>/{scifact,stsb}.json (bireco eval's
MTEB-layout results) for arms stage2_only and stage1_stage2. Standard deviations are the sample
ones (n - 1); the difference column is stage I + II minus stage II alone, per seed, then averaged.
"""
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ARMS = ("stage2_only", "stage1_stage2")
METRICS = (("scifact", "ndcg_at_10", "SciFact nDCG@10"), ("stsb", "cosine_spearman", "STS-B Spearman"))


def score(path, metric):
    return json.load(open(path))["scores"][metric]


def mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(out, seeds, mode, minutes, commit):
    seeds = [int(s) for s in seeds.split()]
    results = {"mode": mode, "minutes": int(minutes), "commit": commit, "seeds": seeds, "untrained": {}, "per_seed": {}}
    for task, metric, _ in METRICS:
        results["untrained"][task] = score(os.path.join(out, "untrained", task + ".json"), metric)
    for seed in seeds:
        results["per_seed"][seed] = {
            arm: {task: score(os.path.join(out, f"seed{seed}", arm, task + ".json"), metric) for task, metric, _ in METRICS}
            for arm in ARMS
        }
    summary = {}
    for task, _, _ in METRICS:
        rows = [results["per_seed"][s] for s in seeds]
        summary[task] = {arm: mean_std([r[arm][task] for r in rows]) for arm in ARMS}
        summary[task]["difference"] = mean_std([r["stage1_stage2"][task] - r["stage2_only"][task] for r in rows])
    results["summary"] = {t: {k: {"mean": m, "std": s} for k, (m, s) in v.items()} for t, v in summary.items()}
    json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=2)

    lines = [
        f"SmolLM2-135M-Instruct, `scripts/reproduce.sh{' --quick' if mode == 'quick' else ''}` at {commit}, "
        f"seeds {', '.join(map(str, seeds))}, {minutes} min. Mean ± sample std over seeds.",
        "",
        "| | " + " | ".join(name for _, _, name in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
        "| untrained | " + " | ".join(f"{results['untrained'][t]:.4f}" for t, _, _ in METRICS) + " |",
    ]
    for arm, label in (("stage2_only", "stage II only"), ("stage1_stage2", "stage I + II"), ("difference", "I + II minus II")):
        lines.append(f"| {label} | " + " | ".join(f"{summary[t][arm][0]:+.4f} ± {summary[t][arm][1]:.4f}"
                                                    if arm == "difference" else
                                                    f"{summary[t][arm][0]:.4f} ± {summary[t][arm][1]:.4f}"
                                                    for t, _, _ in METRICS) + " |")
    lines += ["", "| seed | arm | " + " | ".join(name for _, _, name in METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for seed in seeds:
        for arm in ARMS:
            lines.append(f"| {seed} | {arm} | " + " | ".join(f"{results['per_seed'][seed][arm][t]:.4f}" for t, _, _ in METRICS) + " |")
    table = "\n".join(lines) + "\n"
    open(os.path.join(out, "results.md"), "w").write(table)

    fig, axes = plt.subplots(1, len(METRICS), figsize=(10, 4))
    for ax, (task, _, name) in zip(axes, METRICS):
        labels = ["untrained", "stage II only", "stage I + II"]
        means = [results["untrained"][task], summary[task]["stage2_only"][0], summary[task]["stage1_stage2"][0]]
        errors = [0.0, summary[task]["stage2_only"][1], summary[task]["stage1_stage2"][1]]
        ax.bar(labels, means, yerr=errors, capsize=6, color=["#999999", "#4c72b0", "#dd8452"])
        for i, seed in enumerate(seeds):
            ax.scatter([1, 2], [results["per_seed"][seed]["stage2_only"][task], results["per_seed"][seed]["stage1_stage2"][task]],
                       color="black", s=12, zorder=3, label="per seed" if i == 0 else None)
        ax.set_title(name)
        ax.legend(loc="lower right")
    fig.suptitle(f"SmolLM2-135M: stage II alone vs stage I + II ({mode}, {len(seeds)} seeds)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "results.png"), dpi=120)
    print(table, end="")
    print(f"reproduce: {os.path.join(out, 'results.json')}, results.md, results.png")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
