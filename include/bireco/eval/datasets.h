// Evaluation inputs: BEIR folders (corpus, queries, graded qrels), STS pair files and
// reranking candidate lists. Torch-free; malformed lines are errors naming file:line.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bireco/eval/metrics.h"

namespace bireco::eval {

struct Texts {
  std::vector<std::string> ids, texts;
};

struct BeirSplit {
  Texts corpus;   // text = title + " " + text (text alone when there is no title), as BEIR
  Texts queries;  // only the queries that appear in the split's qrels (BEIR's loader)
  Qrels qrels;
};

// qrels/<split>.tsv: query-id \t corpus-id \t grade per line, after a header row when the
// first line is one (data::is_qrels_header); a bad line is an error naming file:line.
Qrels read_qrels(const std::filesystem::path& file);
BeirSplit read_beir(const std::filesystem::path& folder, const std::string& split);
// A smaller split for quick evaluations (during training): the first `max_queries` queries
// with their qrels; then every document judged for them (any grade) and the corpus's first
// other documents until `max_corpus` (more when more are judged), in corpus order. 0: no cap.
BeirSplit cap_beir(BeirSplit split, int64_t max_queries, int64_t max_corpus);

struct StsPairs {
  std::vector<std::string> first, second;
  std::vector<double> gold;
};
// STS-B tsv (first 7 tab fields: genre, file, year, id, score, sentence1, sentence2) or
// jsonl {"sentence1", "sentence2", "score"}, chosen by the extension (.jsonl / anything else).
StsPairs read_sts(const std::filesystem::path& file);

struct RerankingSample {
  std::string query;
  std::vector<std::string> positive, negative;
};
// jsonl {"query", "positive": [...], "negative": [...]}.
std::vector<RerankingSample> read_reranking(const std::filesystem::path& file);

// Texts to embed: .jsonl ({"text", optional "id"} per line) or .txt (one text per line);
// ids default to the text's 1-based line number in the file (blank lines are skipped).
Texts read_texts(const std::filesystem::path& file);

}  // namespace bireco::eval
