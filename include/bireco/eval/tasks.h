// The evaluation tasks of `bireco eval`: retrieval (BEIR folder), STS (scored pairs) and
// reranking (candidate lists), each scored as MTEB scores it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bireco/eval/encoder.h"
#include "bireco/eval/metrics.h"

namespace bireco::eval {

struct RetrievalOptions {
  std::string split = "test";
  std::string instruction;     // joined to queries; documents get none
  int64_t depth = 100;         // results kept per query (the run file's depth)
  int64_t corpus_chunk = 8192; // texts embedded and scored at a time
  std::filesystem::path cache_dir;  // empty: no cache
  std::filesystem::path model_dir;  // for the cache key
  // BEIR's EvaluateRetrieval(ignore_identical_ids=True) and MTEB: a document whose id equals
  // the query's id is never ranked (on ArguAna, Quora, CQADupStack the query is itself in the
  // corpus and would rank first); false keeps it (`bireco eval --keep-identical-ids`).
  bool ignore_identical_ids = true;
  int64_t max_queries = 0, max_corpus = 0;  // cap_beir (datasets.h); 0: no cap
};

struct RetrievalResult {
  RetrievalScores scores;
  Run run;  // top `depth` per query
  int64_t corpus_size = 0;
  bool corpus_from_cache = false;
};

// Scores are dot products of the encoder's outputs: cosine similarities under the default
// settings (normalize: true), as MTEB scores retrieval.
// 1. Embed the queries (with the instruction).
// 2. Unless options.ignore_identical_ids is off, each query's own id in the corpus is excluded.
// 3. Corpus chunk by chunk (or from the cache): embed, score against every query, keep a
//    running top-depth per query (RunningTopK).
// 4. Score the run with trec_eval's measures.
RetrievalResult run_retrieval(Encoder& encoder, const std::filesystem::path& beir_folder,
                              const RetrievalOptions& options);

struct StsResult {
  double spearman = 0, pearson = 0;
  int64_t pairs = 0;
};
// Cosine similarity of each pair's embeddings vs the gold scores (MTEB's cosine_spearman,
// cosine_pearson). The instruction, when given, goes on both sentences.
// `max_pairs` > 0: the file's first pairs only.
StsResult run_sts(Encoder& encoder, const std::filesystem::path& file,
                  const std::string& instruction, int64_t max_pairs = 0);

struct RerankingResult {
  double map = 0, mrr_at_10 = 0;
  int64_t samples = 0;
};
// MTEB's RerankingEvaluator: per sample, cosine(query, candidate) over positives then
// negatives; AP (scikit-learn) and reciprocal rank within the top 10, averaged over samples
// that have at least one positive and one negative.
// `max_samples` > 0: the file's first samples only.
RerankingResult run_reranking(Encoder& encoder, const std::filesystem::path& file,
                              const std::string& instruction, int64_t max_samples = 0);

// One task as `bireco eval` runs it and as evaluation during training does (the same code, so
// the numbers agree): `task` is retrieval, reranking or sts.
struct TaskOptions {
  std::string split = "test";                  // retrieval
  std::string instruction;                     // queries (STS: both sentences); empty: none
  int64_t max_queries = 0;                     // retrieval, reranking: queries; STS: pairs; 0: all
  int64_t max_corpus = 0;                      // retrieval; 0: all
  std::filesystem::path cache_dir, model_dir;  // retrieval's corpus cache; empty: none
  bool ignore_identical_ids = true;            // retrieval: RetrievalOptions::ignore_identical_ids
};
struct TaskScores {
  std::map<std::string, double> scores;  // as MTEB names them
  std::string main;                      // the task's main score among them
  nlohmann::json counts;                 // queries and corpus / pairs / samples scored
  Run run;                               // retrieval: the top 100 per query
};
TaskScores run_task(Encoder& encoder, const std::string& task, const std::filesystem::path& data,
                    const TaskOptions& options);
// The names run_task reports for `task` (main score first); empty for an unknown task.
std::vector<std::string> task_metrics(const std::string& task);

}  // namespace bireco::eval
