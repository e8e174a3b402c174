"""A `bireco export` embeds in the pinned Hugging Face stack exactly as in bireco, with no code but the
libraries' own calls: SentenceTransformer(dir).encode, AutoModel + last-token pooling, and
PeftModel.from_pretrained on dir/adapter; and an adapter that PEFT itself wrote loads in bireco.

Run by tests/train/test_export_hf.cpp (live, the pinned Python stack):
  export_hf_parity.py --bireco BIN --source MODEL_DIR --work DIR --data BEIR_DIR [--template T]
    [--add-eos 0|1] [--max-length N] [--lora]
MODEL_DIR is a Hugging Face model folder (linked into DIR/source beside a bireco_embedding.json
with the settings given, so the model folder itself is never written to; a folder without weights,
as configs/demo/tiny-llama, gets random ones). Prints one line per check
("check NAME min_cos=...") and exits 1 when one fails (cosine below 0.99999 in fp32).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

MIN_COS = 0.99999
INSTRUCTION = "Given a scientific claim, retrieve documents that support or refute the claim"
failures = []


def report(name, a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    worst = float(cos.min())
    print(f"check {name} rows={len(cos)} min_cos={worst:.10f}", flush=True)
    if not worst >= MIN_COS:
        failures.append(f"{name}: min cosine {worst:.8f} < {MIN_COS} (row {int(cos.argmin())})")


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def bireco_embed(args, model_dir, texts, instruction, name):
    path = os.path.join(args.work, name + ".jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n")
    out = os.path.join(args.work, name + ".npy")
    cmd = [args.bireco, "embed", "--model", model_dir, "--input", path, "--out", out, "--device", "cpu"]
    if instruction:
        cmd += ["--instruction", instruction]
    run(cmd)
    return np.load(out)


def texts_from(data, max_chars):
    """SciFact documents (titles with abstracts: many longer than max_length) and claims, mixed with
    short texts and texts with surrounding whitespace, in an order that mixes lengths in a batch."""
    docs, queries = [], []
    with open(os.path.join(data, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            docs.append((j["title"] + " " + j["text"]).strip()[:max_chars])
            if len(docs) == 40:
                break
    with open(os.path.join(data, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            queries.append(json.loads(line)["text"])
            if len(queries) == 24:
                break
    extra = ["", "x", "  two spaces around  ", "\ttab and newline\n", "Übermäßig naïve — façade ½"]
    return docs[:20] + extra + docs[20:], queries[:12] + extra + queries[12:]


def last_token(model, tokenizer, texts, batch):
    """transformers alone: the tokenizer's default call, the hidden state of each row's last real token."""
    rows = []
    for at in range(0, len(texts), batch):
        enc = tokenizer(texts[at : at + batch], padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        last = enc["attention_mask"].sum(1) - 1
        rows.append(torch.nn.functional.normalize(hidden[torch.arange(hidden.shape[0]), last].float(), dim=-1))
    return torch.cat(rows).numpy()


def make_source(args, folder):
    """MODEL_DIR's files linked into `folder`, with the embedding settings in bireco_embedding.json."""
    os.makedirs(folder, exist_ok=True)
    if not any(n.endswith(".safetensors") for n in os.listdir(args.source)):
        # A config without weights (configs/demo/tiny-llama): random ones, seeded, as HF initialises.
        from transformers import AutoConfig, AutoModelForCausalLM

        # --init-range widens HF's initialiser (0.02): at 0.02 the tiny model's embeddings all lie
        # within 0.04 cosine of each other, so that rankings tie to within fp32 rounding.
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(args.source)
        if getattr(args, "init_range", None):
            config.initializer_range = args.init_range
        AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    for name in os.listdir(args.source):
        if os.path.exists(os.path.join(folder, name)):
            continue
        if name in ("bireco_embedding.json", "manifest.json") or name.startswith("."):
            continue
        os.symlink(os.path.join(os.path.abspath(args.source), name), os.path.join(folder, name))
    settings = {"template": args.template, "instruction_format": "{instruction}; {text}",
                "_default_instruction": INSTRUCTION, "pooling": "last", "add_bos": True,
                "add_eos": bool(args.add_eos), "max_length": args.max_length}
    with open(os.path.join(folder, "bireco_embedding.json"), "w") as f:
        json.dump(settings, f)


def check_export(args, exported, docs, queries, tag):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    with open(os.path.join(exported, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    # The README's recipe is the calls checked below, with no step by hand.
    for needed in ('SentenceTransformer("THIS_FOLDER")', 'prompt_name="query"', "SentenceTransformerEncoderWrapper"):
        if needed not in readme:
            failures.append(f"{tag}: README.md lacks {needed}")
    for manual in ("append", "tail ="):
        if manual in readme:
            failures.append(f"{tag}: README.md still asks for a manual step ({manual!r})")

    ours_d = bireco_embed(args, exported, docs, "", tag + "_docs")
    ours_q = bireco_embed(args, exported, queries, INSTRUCTION, tag + "_queries")
    st = SentenceTransformer(exported, device="cpu")
    report(f"{tag}.sentence_transformers.documents", st.encode(docs, batch_size=7), ours_d)
    report(f"{tag}.sentence_transformers.queries", st.encode(queries, batch_size=5, prompt_name="query"), ours_q)
    # MTEB's route: encode_query / encode_document pick the prompts themselves.
    report(f"{tag}.sentence_transformers.encode_query", st.encode_query(queries, batch_size=5), ours_q)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    model = AutoModel.from_pretrained(exported, dtype=torch.float32).eval()
    report(f"{tag}.transformers.documents", last_token(model, tokenizer, docs, 6), ours_d)
    prompt = st.prompts["query"]
    report(f"{tag}.transformers.queries", last_token(model, tokenizer, [prompt + q for q in queries], 6), ours_q)
    too_long = sum(len(tokenizer(d)["input_ids"]) > args.max_length for d in docs)  # untruncated
    print(f"{tag}: {too_long} of {len(docs)} documents truncated to max_length {args.max_length}")
    if too_long == 0:
        failures.append(f"{tag}: no document reaches max_length; the truncation check checks nothing")
    return ours_d


def check_peft(args, docs):
    """An adapter PEFT writes (FEATURE_EXTRACTION on AutoModel, CAUSAL_LM on AutoModelForCausalLM) loads in
    bireco: `bireco export` of it embeds as PEFT does; and PeftModel on the export's adapter/ equals the export."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    source = os.path.join(args.work, "source")
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(args.work, "export"))
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    for task, cls in (("FEATURE_EXTRACTION", AutoModel), ("CAUSAL_LM", AutoModelForCausalLM)):
        torch.manual_seed(7)
        base = cls.from_pretrained(source, dtype=torch.float32)
        # init_lora_weights=False: B is random too, so the adapter changes every embedding.
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=targets, task_type=task, init_lora_weights=False)
        peft_model = get_peft_model(base, lora).eval()
        adapter = os.path.join(args.work, "peft_" + task.lower())
        peft_model.save_pretrained(adapter)
        with open(os.path.join(adapter, "adapter_config.json")) as f:
            assert json.load(f)["base_model_name_or_path"] == source, "PEFT did not record the base folder"
        inner = peft_model.base_model.model
        inner = inner.model if task == "CAUSAL_LM" else inner  # the LlamaModel, LoRA layers in place
        theirs = last_token(inner, tokenizer, docs, 6)
        exported = os.path.join(args.work, "export_" + task.lower())
        run([args.bireco, "export", "--checkpoint", adapter, "--out", exported])
        ours = bireco_embed(args, exported, docs, "", "peft_" + task.lower())
        report(f"peft.{task}.written_by_peft_embeds_in_bireco", theirs, ours)
        if task != "FEATURE_EXTRACTION":
            continue
        # The export's adapter/ on the base, as its README says: AutoModel + PeftModel.
        reloaded = PeftModel.from_pretrained(AutoModel.from_pretrained(source, dtype=torch.float32),
                                             os.path.join(exported, "adapter")).eval()
        report("peft.adapter_dir_equals_merged_export", last_token(reloaded.base_model.model, tokenizer, docs, 6), ours)
        with open(os.path.join(exported, "adapter", "README.md")) as f:
            if "`AutoModel`" not in f.read():
                failures.append("adapter/README.md does not say which model class the adapter is for")
        with open(os.path.join(exported, "adapter", "adapter_config.json")) as f:
            base_name = json.load(f)["base_model_name_or_path"]
        if base_name is not None and os.path.isabs(base_name):
            failures.append(f"export adapter_config.json names a local path: {base_name}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bireco", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--template", default="<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>")
    p.add_argument("--add-eos", type=int, default=1)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--max-chars", type=int, default=4000)
    p.add_argument("--lora", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(2)
    source = os.path.join(args.work, "source")
    make_source(args, source)
    exported = os.path.join(args.work, "export")
    run([args.bireco, "export", "--checkpoint", source, "--out", exported])
    docs, queries = texts_from(args.data, args.max_chars)
    check_export(args, exported, docs, queries, "export")
    if args.lora:
        check_peft(args, docs)
    if failures:
        print("FAILED:\n" + "\n".join(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
