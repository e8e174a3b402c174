"""Every line of real text in ../shared/realdata, and the HF `tokenizers` library's ids for it.

    python hf_tokenize_realdata.py TOKENIZER_JSON REALDATA_DIR OUT_DIR

Writes OUT_DIR/texts.jsonl ({"text": ...} per line, `bireco tokenize`'s input), ids.jsonl and
ids_special.jsonl ({"ids": [...]}: encode without / with special tokens), and prints how many
texts came from each source. Texts: the tokenization strings, and every text field of the
retrieval, pair and STS datasets (SciFact titles, abstracts and queries; the FlagEmbedding
examples' queries, positives and negatives; SICK and STS-B sentence pairs).
"""
import csv
import json
import os
import sys

from tokenizers import Tokenizer


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def texts_of(realdata):
    data = os.path.join(realdata, "datasets")
    for row in jsonl(os.path.join(realdata, "tokenizations", "strings_meta.jsonl")):
        yield "tokenization strings", row["text"]
    for row in jsonl(os.path.join(data, "beir-scifact", "corpus.jsonl")):
        yield "scifact corpus", row["title"]
        yield "scifact corpus", row["text"]
    for row in jsonl(os.path.join(data, "beir-scifact", "queries.jsonl")):
        yield "scifact queries", row["text"]
    examples = os.path.join(data, "flagembedding-examples")
    for name in sorted(os.listdir(examples)):
        for row in jsonl(os.path.join(examples, name)):
            for key in ("query", "pos", "neg"):
                for text in [row[key]] if isinstance(row.get(key), str) else row.get(key, []):
                    yield "flagembedding " + name, text
    with open(os.path.join(data, "sick", "SICK.txt"), encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            yield "sick", row["sentence_A"]
            yield "sick", row["sentence_B"]
    for split in ("train", "dev", "test"):
        with open(os.path.join(data, "stsbenchmark", f"sts-{split}.csv"), encoding="utf-8") as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                yield "stsbenchmark", fields[5]
                yield "stsbenchmark", fields[6]


def main(tokenizer_json, realdata, out_dir):
    tokenizer = Tokenizer.from_file(tokenizer_json)
    texts, counts = [], {}
    for source, text in texts_of(realdata):
        texts.append(text)
        counts[source] = counts.get(source, 0) + 1
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "texts.jsonl"), "w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    for name, special in (("ids.jsonl", False), ("ids_special.jsonl", True)):
        encodings = tokenizer.encode_batch(texts, add_special_tokens=special)
        with open(os.path.join(out_dir, name), "w") as f:
            for e in encodings:
                f.write(json.dumps({"ids": e.ids}, separators=(",", ":")) + "\n")
    print(json.dumps(counts))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
