// Retrieval, STS and reranking evaluation on top of Encoder, RunningTopK and the metrics.
#include "bireco/eval/tasks.h"

#include <limits>
#include <unordered_map>

#include "bireco/eval/datasets.h"
#include "bireco/eval/embedding_cache.h"
#include "bireco/eval/search.h"
#include "bireco/util/error.h"

namespace bireco::eval {
namespace {

torch::Tensor cosine(const torch::Tensor& a, const torch::Tensor& b) {
  namespace F = torch::nn::functional;
  return F::cosine_similarity(a, b, F::CosineSimilarityFuncOptions().dim(-1).eps(1e-12));
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// (query row, corpus row) for every document that carries a query's id.
std::vector<std::pair<int64_t, int64_t>> identical_ids(const std::vector<std::string>& queries,
                                                       const std::vector<std::string>& corpus) {
  std::unordered_map<std::string, std::vector<int64_t>> rows;
  for (size_t d = 0; d < corpus.size(); ++d) rows[corpus[d]].push_back(static_cast<int64_t>(d));
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (size_t q = 0; q < queries.size(); ++q) {
    if (auto it = rows.find(queries[q]); it != rows.end())
      for (int64_t d : it->second) pairs.emplace_back(static_cast<int64_t>(q), d);
  }
  return pairs;
}

}  // namespace

RetrievalResult run_retrieval(Encoder& encoder, const std::filesystem::path& beir_folder,
                              const RetrievalOptions& options) {
  const BeirSplit beir =
      cap_beir(read_beir(beir_folder, options.split), options.max_queries, options.max_corpus);
  if (beir.queries.ids.empty()) throw Error(beir_folder.string() + ": no query of qrels/" + options.split + ".tsv is in queries.jsonl");
  RetrievalResult result;
  result.corpus_size = static_cast<int64_t>(beir.corpus.ids.size());
  const torch::Tensor queries = encoder.encode(beir.queries.texts, options.instruction);  // (Q, C)
  const torch::Device device = encoder.model()->embed->weight.device();
  RunningTopK top(queries.to(device), options.depth);
  if (options.ignore_identical_ids) top.exclude(identical_ids(beir.queries.ids, beir.corpus.ids));

  std::string key;
  if (!options.cache_dir.empty()) {
    key = corpus_cache_key(options.model_dir, encoder.settings(), beir_folder / "corpus.jsonl");
    // A capped corpus is another corpus (its size alone would not tell two caps apart).
    if (options.max_queries > 0 || options.max_corpus > 0)
      key += " max_queries=" + std::to_string(options.max_queries) +
             " max_corpus=" + std::to_string(options.max_corpus);
    if (auto cached = load_cached(options.cache_dir, key); cached && cached->size(0) == result.corpus_size) {
      result.corpus_from_cache = true;
      for (int64_t start = 0; start < result.corpus_size; start += options.corpus_chunk)
        top.add(cached->slice(0, start, std::min(result.corpus_size, start + options.corpus_chunk)), start);
    }
  }
  if (!result.corpus_from_cache) {
    std::vector<torch::Tensor> kept;  // only when caching: the whole corpus on the CPU
    for (int64_t start = 0; start < result.corpus_size; start += options.corpus_chunk) {
      const int64_t end = std::min(result.corpus_size, start + options.corpus_chunk);
      const std::vector<std::string> texts(beir.corpus.texts.begin() + start, beir.corpus.texts.begin() + end);
      torch::Tensor docs = encoder.encode(texts, "");  // documents carry no instruction
      top.add(docs, start);
      if (!key.empty()) kept.push_back(docs);
    }
    if (!key.empty()) store_cached(options.cache_dir, key, torch::cat(kept, 0));
  }

  const TopK best = top.result();
  auto scores = best.scores.accessor<float, 2>();
  auto indices = best.indices.accessor<int64_t, 2>();
  for (size_t q = 0; q < beir.queries.ids.size(); ++q) {
    auto& docs = result.run[beir.queries.ids[q]];
    for (int64_t j = 0; j < best.scores.size(1); ++j)
      if (scores[q][j] != -std::numeric_limits<float>::infinity())  // excluded (RunningTopK)
        docs.push_back({beir.corpus.ids[static_cast<size_t>(indices[q][j])],
                        static_cast<double>(scores[q][j])});
  }
  result.scores = evaluate_retrieval(beir.qrels, result.run);
  return result;
}

StsResult run_sts(Encoder& encoder, const std::filesystem::path& file,
                  const std::string& instruction, int64_t max_pairs) {
  StsPairs pairs = read_sts(file);
  if (max_pairs > 0 && static_cast<int64_t>(pairs.gold.size()) > max_pairs) {
    for (auto* column : {&pairs.first, &pairs.second})
      column->resize(static_cast<size_t>(max_pairs));
    pairs.gold.resize(static_cast<size_t>(max_pairs));
  }
  const auto a = encoder.encode(pairs.first, instruction), b = encoder.encode(pairs.second, instruction);
  const std::vector<double> predicted = to_vector(cosine(a, b));
  return {spearman(pairs.gold, predicted), pearson(pairs.gold, predicted), static_cast<int64_t>(pairs.gold.size())};
}

RerankingResult run_reranking(Encoder& encoder, const std::filesystem::path& file,
                              const std::string& instruction, int64_t max_samples) {
  std::vector<RerankingSample> samples = read_reranking(file);
  if (max_samples > 0 && static_cast<int64_t>(samples.size()) > max_samples)
    samples.resize(static_cast<size_t>(max_samples));
  // One encode for all queries and one for all candidates, so batches stay full.
  std::vector<std::string> queries, candidates;
  for (const auto& s : samples) {
    queries.push_back(s.query);
    candidates.insert(candidates.end(), s.positive.begin(), s.positive.end());
    candidates.insert(candidates.end(), s.negative.begin(), s.negative.end());
  }
  const torch::Tensor q = encoder.encode(queries, instruction), c = encoder.encode(candidates, "");
  RerankingResult r;
  int64_t offset = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    const auto n = static_cast<int64_t>(s.positive.size() + s.negative.size());
    const auto scores = to_vector(cosine(q[static_cast<int64_t>(i)].unsqueeze(0), c.slice(0, offset, offset + n)));
    offset += n;
    if (s.positive.empty() || s.negative.empty()) continue;  // as MTEB: nothing to rank
    std::vector<bool> positive(static_cast<size_t>(n), false);
    std::fill(positive.begin(), positive.begin() + static_cast<int64_t>(s.positive.size()), true);
    r.map += average_precision(scores, positive);
    r.mrr_at_10 += reciprocal_rank_at(scores, positive, 10);
    ++r.samples;
  }
  if (r.samples == 0) throw Error(file.string() + ": no sample has both a positive and a negative");
  r.map /= static_cast<double>(r.samples);
  r.mrr_at_10 /= static_cast<double>(r.samples);
  return r;
}

std::vector<std::string> task_metrics(const std::string& task) {
  if (task == "retrieval") return {"ndcg_at_10", "mrr_at_10", "map_at_100", "recall_at_100"};
  if (task == "sts") return {"cosine_spearman", "cosine_pearson"};
  if (task == "reranking") return {"map", "mrr_at_10"};
  return {};
}

TaskScores run_task(Encoder& encoder, const std::string& task, const std::filesystem::path& data,
                    const TaskOptions& options) {
  TaskScores t;
  if (task == "retrieval") {
    RetrievalOptions retrieval;
    retrieval.split = options.split;
    retrieval.instruction = options.instruction;
    retrieval.cache_dir = options.cache_dir;
    retrieval.model_dir = options.model_dir;
    retrieval.max_queries = options.max_queries;
    retrieval.max_corpus = options.max_corpus;
    retrieval.ignore_identical_ids = options.ignore_identical_ids;
    auto r = run_retrieval(encoder, data, retrieval);
    t.scores = {{"ndcg_at_10", r.scores.ndcg_at_10},
                {"mrr_at_10", r.scores.mrr_at_10},
                {"map_at_100", r.scores.map_at_100},
                {"recall_at_100", r.scores.recall_at_100}};
    t.counts = {{"queries", r.scores.queries},
                {"corpus", r.corpus_size},
                {"corpus_from_cache", r.corpus_from_cache}};
    t.run = std::move(r.run);
  } else if (task == "sts") {
    const auto r = run_sts(encoder, data, options.instruction, options.max_queries);
    t.scores = {{"cosine_spearman", r.spearman}, {"cosine_pearson", r.pearson}};
    t.counts = {{"pairs", r.pairs}};
  } else if (task == "reranking") {
    const auto r = run_reranking(encoder, data, options.instruction, options.max_queries);
    t.scores = {{"map", r.map}, {"mrr_at_10", r.mrr_at_10}};
    t.counts = {{"samples", r.samples}};
  } else {
    throw Error("task '" + task + "' is not one of retrieval, reranking, sts");
  }
  t.main = task_metrics(task).front();
  return t;
}

}  // namespace bireco::eval
