"""bench/run.sh's last stage: reads the JSON lines that bench_train_step and the references
printed ({"name", "impl", "run": {...}} per process), prints the table and writes the results
JSON. Usage: collect.py RAW.jsonl OUT.json "COMMAND" "MACHINE" SIZES.txt

Rows: stageN-SHAPE (bireco vs the HF stack), gradcache[-keep]-SHAPE (bireco stage II with GradCache
vs bireco's plain stage II step at the same batch), embed-SHAPE (bireco embed vs
sentence-transformers encode), tokenize-* (bireco's tokenizer vs sentencepiece). Each row's
`ratio` is bireco throughput / reference throughput (tokens per second: real tokens of all
timed steps over their summed time), `peak_ratio` bireco / reference peak memory.
"""
import json
import statistics
import sys

PEAK_TFLOPS = 790.0  # H200 dense bf16 matrix product, as measured on the lent machine

# The targets: (what, met(entry) -> bool).
TARGETS = {
    "stage": ("ratio >= 1.5, peak <= 0.7", lambda e: e["ratio"] >= 1.5 and e["peak_ratio"] <= 0.7),
    "embed": ("ratio >= 1.3", lambda e: e["ratio"] >= 1.3),
    "gradcache": ("step time <= 1.3x plain", lambda e: 1.0 / e["ratio"] <= 1.3),
}
GPU_TARGET = ("MFU >= 45 %, ratio >= 1.3", lambda e: e.get("bireco_mfu", 0) >= 0.45 and e["ratio"] >= 1.3)


def model_flops_per_step(c, name, tokens, seq):
    """Model FLOPs of one step (PaLM's 6N + 12 L C T per token, recomputation not counted).
    Stage II trains LoRA only: forward 2N + input gradients 2N per token (weight gradients of
    the adapters neglected). Stage I's LM head is applied to the rebuilt tokens only (half)."""
    C, L, V, I = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["intermediate_size"]
    D = c.get("head_dim") or C // c["num_attention_heads"]
    body = L * (C * c["num_attention_heads"] * D * 2 + 2 * C * c["num_key_value_heads"] * D + 3 * C * I)
    if name.startswith("stage1"):
        return 6 * (body * tokens + V * C * tokens / 2) + 12 * L * C * seq * tokens
    if name.startswith("stage2"):
        return 4 * body * tokens + 8 * L * C * seq * tokens
    return 2 * body * tokens + 4 * L * C * seq * tokens


def summary(runs):
    steps = [s for r in runs for s in r["run"]["steps_s"]]
    if not steps:
        return None
    tokens = [t for r in runs for t in r["run"]["tokens"]]
    padded = [t for r in runs for t in r["run"].get("padded_tokens", [])]
    cpu = [s for r in runs for s in r["run"].get("cpu_s", [])]
    phases = {k: statistics.median(r["run"]["phases_s"][k] for r in runs) for k in runs[0]["run"].get("phases_s", {})}
    first = runs[0]["run"]
    return {"median_s": statistics.median(steps), "min_s": min(steps), "max_s": max(steps), "steps": len(steps),
            "tokens_per_s": sum(tokens) / sum(steps), "tokens_per_step": sum(tokens) / len(tokens),
            "padding_overhead": sum(padded) / sum(tokens) if padded else None,
            "cpu_median_s": statistics.median(cpu) if cpu else None,
            "peak_mb": max(r["run"]["peak_mb"] for r in runs),
            "loaded_rss_mb": max(r["run"].get("loaded_rss_mb", 0) for r in runs), "phases_s": phases,
            "loss": first.get("loss", []), "checksum": first.get("checksum"),
            "embeddings": runs[0].get("embeddings"), "dtype": first.get("dtype"),
            "torch": first.get("torch"), "transformers": first.get("transformers"), "threads": first.get("threads")}


def min_cosine(a_path, b_path):
    import numpy as np

    a, b = np.load(a_path).astype(np.float64), np.load(b_path).astype(np.float64)
    if a.shape != b.shape:
        return None
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.min())


def parity(name, b, r):
    """The proof that both sides compute the same thing: (text, number)."""
    if name.startswith(("stage", "gradcache")) and b["loss"] and r["loss"]:
        d = abs(b["loss"][0] - r["loss"][0])
        return f"first loss {b['loss'][0]:.4f}, diff {d:.1e}", d
    if name.startswith("embed"):
        rel = abs(b["checksum"] - r["checksum"]) / max(1e-12, abs(r["checksum"]))
        text = f"checksum {rel:.1e}"
        if b["embeddings"] and r["embeddings"]:
            cos = min_cosine(b["embeddings"], r["embeddings"])
            text += f", min cos {cos:.6f}" if cos is not None else ", shapes differ"
        return text, rel
    if name.startswith("tokenize"):
        d = abs(b["tokens_per_step"] - r["tokens_per_step"])
        return f"tokens {d:.0f}", d
    return "-", None


def main():
    raw, out_path, command, machine, sizes_path = sys.argv[1:6]
    groups, errors, configs = {}, [], {}
    for line in open(raw):
        line = line.strip()
        if not line:
            continue
        e = json.loads(line)
        if "error" in e:
            errors.append(e)
            continue
        if e.get("config"):
            configs[e["name"]] = e["config"]
        groups.setdefault(e["name"], {}).setdefault(e["impl"], []).append(e)
    results, cuda = [], False
    for name, g in groups.items():
        b = summary(g.get("bireco", []))
        pairs = [(name, b, i, summary(rs)) for i, rs in g.items() if i != "bireco" and not i.startswith("gradcache")]
        for impl in (i for i in g if i.startswith("gradcache")):  # GradCache against the plain step of the row
            pairs.append((name.replace("stage2-", impl + "-"), summary(g[impl]), "bireco plain", b))
        for label, s, ref_impl, r in pairs:
            if s is None or r is None:
                continue
            entry = {"name": label, "reference": ref_impl, "ratio": s["tokens_per_s"] / r["tokens_per_s"],
                     "bireco_tokens_per_s": s["tokens_per_s"], "reference_tokens_per_s": r["tokens_per_s"],
                     "bireco_peak_mb": s["peak_mb"], "reference_peak_mb": r["peak_mb"],
                     "peak_ratio": s["peak_mb"] / r["peak_mb"], "bireco": s, "reference_run": r}
            entry["parity"], entry["parity_value"] = parity(label, s, r)
            if g["bireco"][0].get("device") == "cuda" and name in configs:
                seq = g["bireco"][0].get("seq", 512)
                flops = model_flops_per_step(configs[name], label, s["tokens_per_step"], seq)
                entry["bireco_mfu"] = flops / s["median_s"] / (PEAK_TFLOPS * 1e12)
                entry["reference_mfu"] = flops / r["median_s"] / (PEAK_TFLOPS * 1e12)
                cuda = True
            kind = "gradcache" if label.startswith("gradcache") else "embed" if label.startswith("embed") else \
                "stage" if label.startswith("stage") else None
            target = GPU_TARGET if cuda and label.startswith("stage1-1b") else TARGETS.get(kind)
            if target:
                entry["target"], entry["target_met"] = target[0], bool(target[1](entry))
            results.append(entry)

    span = lambda s: f"{s['median_s']:.2f} ({s['min_s']:.2f}-{s['max_s']:.2f})"  # noqa: E731
    lines = ["| benchmark | reference | bireco tok/s | reference tok/s | ratio | bireco step s median (min-max) | "
             "reference step s median (min-max) | bireco peak MB | reference peak MB | peak ratio | parity | target |",
             "|" + "---|" * 12]
    for e in results:
        b, r = e["bireco"], e["reference_run"]
        met = "-" if "target" not in e else f"{e['target']}: {'met' if e['target_met'] else 'NOT met'}"
        lines.append(f"| {e['name']} | {e['reference']} | {b['tokens_per_s']:.0f} | {r['tokens_per_s']:.0f} | "
                     f"{e['ratio']:.2f} | {span(b)} | {span(r)} | {b['peak_mb']:.0f} | {r['peak_mb']:.0f} | "
                     f"{e['peak_ratio']:.2f} | {e['parity']} | {met} |")
    print(f"command: {command}")
    print(f"machine: {machine}")
    with open(sizes_path) as f:
        print(f.read().rstrip())
    print()
    print("\n".join(lines))
    if cuda:
        print("\nMFU against %.0f TFLOP/s (model FLOPs of real tokens, recomputation not counted):" % PEAK_TFLOPS)
        for e in results:
            if "bireco_mfu" in e:
                print(f"  {e['name']}: bireco {100 * e['bireco_mfu']:.1f} %, {e['reference']} {100 * e['reference_mfu']:.1f} %")
    print("\nwhere the time goes (median s per step: forward+loss / backward / clip / AdamW; "
          "bireco's padded/real tokens; memory after loading, before the first step):")
    for e in results:
        for side, s in (("bireco" if e["reference"] != "bireco plain" else e["name"].rsplit("-", 1)[0], e["bireco"]),
                        (e["reference"], e["reference_run"])):
            if not s["phases_s"] and not s["loaded_rss_mb"]:
                continue
            p = s["phases_s"]
            parts = [f"{k} {p[k]:.2f}" for k in ("forward", "backward", "clip", "optimizer") if k in p]
            if s["padding_overhead"]:
                parts.append(f"padded/real {s['padding_overhead']:.2f}")
            if s["loaded_rss_mb"]:
                parts.append(f"loaded {s['loaded_rss_mb']:.0f} MB")
            print(f"  {e['name']:<18} {side:<22} " + " / ".join(parts))
    for e in errors:
        print(f"FAILED: {e['name']} {e['impl']}: {e['error']}")
    with open(out_path, "w") as f:
        json.dump({"command": command, "machine": machine, "sizes": open(sizes_path).read(), "results": results,
                   "failed": errors}, f, indent=1)


if __name__ == "__main__":
    main()
