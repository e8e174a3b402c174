"""bench/run.sh's last stage: reads the JSON lines that bench_train_step and the references
printed ({"name", "impl", "run": {...}} per process), prints the table and writes the results
JSON. Usage: collect.py RAW.jsonl OUT.json "COMMAND" "MACHINE"
"""
import json
import statistics
import sys

PEAK_TFLOPS = 790.0  # H200 / H100 dense bf16, as the issue states


def model_flops_per_step(config, name, tokens):
    """Model FLOPs of one step (PaLM's 6N + 12 L C T per token, recomputation not counted).
    Stage II trains LoRA only: forward 2N + input gradients 2N per token (weight gradients of
    the adapters neglected). Stage I's LM head is applied to the rebuilt tokens only."""
    c = config
    C, L, V, I = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["intermediate_size"]
    D = c.get("head_dim", C // c["num_attention_heads"])
    body = L * (C * c["num_attention_heads"] * D * 2 + 2 * C * c["num_key_value_heads"] * D + 3 * C * I)
    T = c.get("_seq", 512)
    if name.startswith("stage1"):
        return 6 * (body * tokens + V * C * tokens / 2) + 12 * L * C * T * tokens
    if name.startswith("stage2"):
        return 4 * body * tokens + 8 * L * C * T * tokens
    return 2 * body * tokens + 4 * L * C * T * tokens


def summary(runs):
    steps = [s for r in runs for s in r["run"]["steps_s"]]
    if not steps:
        return None
    med = statistics.median(steps)
    cpu = [s for r in runs for s in r["run"].get("cpu_s", [])]
    tokens = runs[0]["run"]["tokens_per_step"]
    phases = {}
    for k in runs[0]["run"].get("phases_s", {}):
        phases[k] = statistics.median(r["run"]["phases_s"][k] for r in runs)
    return {"median_s": med, "min_s": min(steps), "max_s": max(steps), "tokens_per_s": tokens / med,
            "tokens_per_step": tokens, "cpu_median_s": statistics.median(cpu) if cpu else None, "peak_mb": max(r["run"]["peak_mb"] for r in runs),
            "start_rss_mb": max(r["run"].get("start_rss_mb", 0) for r in runs), "phases_s": phases,
            "loss": runs[0]["run"].get("loss", []), "checksum": runs[0]["run"].get("checksum"),
            "torch": runs[0]["run"].get("torch"), "threads": runs[0]["run"].get("threads")}


def parity(name, b, r, checks):
    """|bireco - reference| of the first step's loss (stage I: deterministic; stage II: the
    dropout-free parity run), relative difference of the embedding checksum."""
    if name.startswith("stage1") and b["loss"] and r["loss"]:
        return abs(b["loss"][0] - r["loss"][0])
    if name.startswith("stage2"):
        key = name.replace("stage2-", "parity-stage2-")
        if key in checks:
            return abs(checks[key]["bireco"]["loss"][0] - checks[key]["reference"]["loss"][0])
    if name.startswith("tokenize"):
        return abs(b["tokens_per_step"] - r["tokens_per_step"])
    if name.startswith("embed") and b.get("checksum") and r.get("checksum"):
        return abs(b["checksum"] - r["checksum"]) / max(1e-12, abs(r["checksum"]))
    return None


def main():
    raw, out_path, command, machine = sys.argv[1:5]
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
            configs[e["name"]] = dict(e["config"], _seq=e.get("seq", 512))
        groups.setdefault(e["name"], {}).setdefault(e["impl"], []).append(e)
    checks = {n: {i: summary(rs) for i, rs in g.items()} for n, g in groups.items() if n.startswith("parity-")}
    results, device = [], None
    header = ("| benchmark | bireco tok/s | reference tok/s | ratio | bireco step s median (min-max) | "
              "reference step s median (min-max) | bireco peak MB | reference peak MB | peak ratio | CPU-time ratio ref/bireco | abs. diff vs ref |")
    lines = [header, "|" + "---|" * 11]
    for name, g in groups.items():
        if name.startswith("parity-"):
            continue
        b = summary(g.get("bireco", []))
        for ref_impl in [i for i in g if i != "bireco"]:
            r = summary(g[ref_impl])
            if b is None or r is None:
                continue
            ratio = b["tokens_per_s"] / r["tokens_per_s"]
            diff = parity(name, b, r, checks)
            label = name if ref_impl == "reference" else f"{name} vs {ref_impl}"
            entry = {"name": label, "bireco_tokens_per_s": b["tokens_per_s"], "reference_tokens_per_s": r["tokens_per_s"],
                     "ratio": ratio, "bireco_peak_mb": b["peak_mb"], "reference_peak_mb": r["peak_mb"],
                     "reference": ref_impl, "bireco": b, "reference_run": r, "abs_diff_vs_reference": diff}
            if name in configs and g["bireco"][0].get("device") == "cuda":
                flops = model_flops_per_step(configs[name], name, b["tokens_per_step"])
                entry["bireco_mfu"] = flops / b["median_s"] / (PEAK_TFLOPS * 1e12)
                entry["reference_mfu"] = flops / r["median_s"] / (PEAK_TFLOPS * 1e12)
                device = "cuda"
            results.append(entry)
            cpu_ratio = r["cpu_median_s"] / b["cpu_median_s"] if b["cpu_median_s"] and r["cpu_median_s"] else None
            entry["cpu_time_ratio"] = cpu_ratio
            span = lambda s: f"{s['median_s']:.3f} ({s['min_s']:.3f}-{s['max_s']:.3f})"  # noqa: E731
            lines.append(f"| {label} | {b['tokens_per_s']:.0f} | {r['tokens_per_s']:.0f} | {ratio:.2f} | {span(b)} | "
                         f"{span(r)} | {b['peak_mb']:.0f} | {r['peak_mb']:.0f} | {b['peak_mb'] / r['peak_mb']:.2f} | "
                         f"{'-' if cpu_ratio is None else f'{cpu_ratio:.2f}'} | "
                         f"{'-' if diff is None else f'{diff:.1e}'} |")
    print(f"command: {command}")
    print(f"machine: {machine}")
    print("\n".join(lines))
    if device == "cuda":
        print("\nMFU against %.0f TFLOP/s:" % PEAK_TFLOPS)
        for e in results:
            if "bireco_mfu" in e:
                print(f"  {e['name']}: bireco {100 * e['bireco_mfu']:.1f}%, {e['reference']} {100 * e['reference_mfu']:.1f}%")
    print("\nwhere the time goes (median s per step: forward+loss / backward / clip / AdamW):")
    for e in results:
        for side, s in (("bireco", e["bireco"]), (e["reference"], e["reference_run"])):
            if s["phases_s"]:
                p = s["phases_s"]
                print(f"  {e['name']:<22} {side:<10} " + " / ".join(f"{k} {p[k]:.3f}" for k in
                                                                      ("forward", "backward", "clip", "optimizer") if k in p))
    for e in errors:
        print(f"FAILED: {e['name']} {e['impl']}: {e['error']}")
    with open(out_path, "w") as f:
        json.dump({"command": command, "machine": machine, "results": results,
                   "failed": errors}, f, indent=1)


if __name__ == "__main__":
    main()
