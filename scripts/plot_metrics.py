#!/usr/bin/python3
"""Draw a one-page dashboard of bireco runs from their metrics.jsonl files, to PNG.

    scripts/plot_metrics.py output/demo/stage1/metrics.jsonl [-o stage1.png]
    scripts/plot_metrics.py A/metrics.jsonl B/metrics.jsonl -o dashboard.png [--label a --label b]

Panels in a grid: the evaluation scores (eval/<task>/<metric>, one panel each), the losses
(every `loss*` series, one line style per direction), accuracy, learning rate, gradient norm
and throughput, then any other logged series. A series that never changes (skipped_steps at 0)
is left out, and so are raw token counts. Several files are overlaid, one colour per run, named
by --label or by the metrics file's folder. Prints the panels drawn, then the PNG's path.
Uses Debian's python3-matplotlib (hence /usr/bin/python3).
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Panels after the evaluation scores, in this order: (title, series in it).
KNOWN = [("loss", lambda k: "loss" in k), ("accuracy", lambda k: k == "accuracy"), ("lr", lambda k: k == "lr"),
         ("grad_norm", lambda k: k == "grad_norm"), ("tokens_per_s", lambda k: k == "tokens_per_s")]
# Never drawn: counts that say nothing about training by themselves.
SKIPPED = {"step", "tokens", "eval_seconds"}
STYLES = ["-", "--", ":", "-."]
MAIN_SCORES = {"ndcg_at_10", "cosine_spearman", "map"}


def read_records(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{number}: not a JSON object: {e}")
            if not isinstance(record, dict):
                sys.exit(f"{path}:{number}: not a JSON object")
            records.append(record)
    if not records:
        sys.exit(f"{path}: no records")
    return records


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def series(records, name):
    return [(r["step"], r[name]) for r in records if "step" in r and is_number(r.get(name))]


def panels_for(runs):
    """[(title, [series names])] for the series that change in at least one run."""
    names = []
    for _, records in runs:
        for r in records:
            for k, v in r.items():
                if k not in SKIPPED and is_number(v) and k not in names:
                    names.append(k)
    changing = [n for n in names if any(len({v for _, v in series(records, n)}) > 1 for _, records in runs)]
    # Each task's main score first (MTEB's: nDCG@10, Spearman, MAP), then the others.
    evals = sorted((n for n in changing if n.startswith("eval/")),
                   key=lambda n: (n.rsplit("/", 1)[0], n.rsplit("/", 1)[1] not in MAIN_SCORES, n))
    panels = [(n[len("eval/"):], [n]) for n in evals]
    taken = {n for _, group in panels for n in group}
    for title, belongs in KNOWN:
        group = [n for n in changing if n not in taken and belongs(n)]
        if group:
            panels.append((title, group))
            taken.update(group)
    panels += [(n, [n]) for n in changing if n not in taken]
    return panels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", nargs="+", help="metrics.jsonl files written by bireco train")
    parser.add_argument("-o", "--out", help="PNG file (default with one file: beside it)")
    parser.add_argument("--label", action="append", default=[], help="run name, once per file (default: its folder)")
    parser.add_argument("--title", default="", help="figure title")
    args = parser.parse_args()
    if args.label and len(args.label) != len(args.metrics):
        sys.exit(f"--label given {len(args.label)} times for {len(args.metrics)} files")
    if not args.out and len(args.metrics) > 1:
        sys.exit("-o/--out is required with several files")
    labels = args.label or [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in args.metrics]
    runs = [(label, read_records(path)) for label, path in zip(labels, args.metrics)]
    out = args.out or args.metrics[0].rsplit(".", 1)[0] + ".png"

    panels = panels_for(runs)
    if not panels:
        sys.exit("nothing to draw: every series is constant")
    cols = 1 if len(panels) == 1 else 2 if len(panels) <= 4 else 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.2 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, group) in zip(axes.flat, panels):
        for i, (label, records) in enumerate(runs):
            for j, name in enumerate(group):
                points = series(records, name)
                if not points:
                    continue
                xs, ys = zip(*points)
                marker = "o" if name.startswith("eval/") else None
                parts = [label] if len(runs) > 1 else []
                parts += [name] if len(group) > 1 else []
                ax.plot(xs, ys, STYLES[j % len(STYLES)], color=colours[i % len(colours)], marker=marker,
                        markersize=4, label=" ".join(parts) or None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if title == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        if len(group) > 1 or len(runs) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("panels:", ", ".join(title for title, _ in panels))
    print(out)


if __name__ == "__main__":
    main()
