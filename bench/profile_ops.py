"""Where a step's time goes, bireco next to the reference: the operators' self time over one
profiled step, from `bench_train_step --profile` and `bench/reference/hf_step.py --profile`
(both write {"impl", "step_s", "ops": [{"name", "self_us", "calls"}]}).

  profile_ops.py BIRECO.json REFERENCE.json [--title TEXT] [--top 15]

Prints a markdown table: the operators that take the most time on either side, grouped into
matrix products (the mm / addmm / bmm kernels; autograd's MmBackward0 and the like count as the
rest), attention, and the rest, with
each side's milliseconds, calls and share of its profiled step.
"""
import argparse
import json

GEMM = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear"}


def group(name):
    if name in GEMM:
        return "matrix products"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention"
    return "everything else"


def share(ms, step_s):
    """Per cent of the profiled step."""
    return 100.0 * ms / (1000.0 * step_s)


def load(path):
    with open(path) as f:
        d = json.load(f)
    return d["step_s"], {o["name"]: (o["self_us"] / 1000.0, o["calls"]) for o in d["ops"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bireco")
    p.add_argument("reference")
    p.add_argument("--title", default="")
    p.add_argument("--top", type=int, default=15)
    a = p.parse_args()
    (bs, b), (rs, r) = load(a.bireco), load(a.reference)
    print(f"{a.title}: profiled step bireco {bs:.2f} s, reference {rs:.2f} s "
          "(the profiler's own cost included)\n")
    print("| | bireco ms | calls | share | reference ms | calls | share |")
    print("|---|---|---|---|---|---|---|")
    groups = {}
    for ops, side in ((b, 0), (r, 1)):
        for name, (ms, _) in ops.items():
            groups.setdefault(group(name), [0.0, 0.0])[side] += ms
    for g in ("matrix products", "attention", "everything else"):
        bm, rm = groups.get(g, [0.0, 0.0])
        print(f"| **{g}** | {bm:.0f} | | {share(bm, bs):.0f} % | {rm:.0f} | | {share(rm, rs):.0f} % |")
    names = sorted(set(b) | set(r), key=lambda n: -max(b.get(n, (0, 0))[0], r.get(n, (0, 0))[0]))
    for n in names[: a.top]:
        (bm, bc), (rm, rc) = b.get(n, (0.0, 0)), r.get(n, (0.0, 0))
        print(f"| {n[:60]} | {bm:.0f} | {bc} | {share(bm, bs):.1f} % | {rm:.0f} | {rc} | {share(rm, rs):.1f} % |")
    print()


if __name__ == "__main__":
    main()
