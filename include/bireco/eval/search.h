// Exact top-k retrieval by chunked matrix products: the corpus arrives in chunks and each
// query keeps a running top-k, so N_q x N_docs scores never exist at once.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace bireco::eval {

struct TopK {
  torch::Tensor scores;   // [Q, k] float32, best first
  torch::Tensor indices;  // [Q, k] int64 rows of the corpus
};

class RunningTopK {
 public:
  // queries [Q, C] (moved to their device; chunks are scored there). k > 0.
  RunningTopK(torch::Tensor queries, int64_t k);
  // Scores docs [n, C] (rows offset..offset+n-1 of the corpus) and merges:
  //   1. s = queries @ docs^T                      (Q, n)
  //   2. the chunk's own top-min(k, n)             (Q, k')
  //   3. concatenated with the running top-k, top-k again; indices shifted by offset.
  // Memory: Q * (n + k) scores, whatever the corpus size.
  void add(const torch::Tensor& docs, int64_t offset);
  // (query row, corpus row) pairs never ranked, e.g. a query's own document (BEIR's
  // ignore_identical_ids): their scores are -inf before each top-k, so the k kept are the best
  // of the others, as BEIR/MTEB get by retrieving k + 1 and dropping the query's id.
  void exclude(std::vector<std::pair<int64_t, int64_t>> pairs);
  // Current top-k (fewer columns while fewer than k docs were added), on the CPU. An excluded
  // pair can only appear, with score -inf, where a query has fewer than k other documents.
  TopK result() const;

 private:
  torch::Tensor queries_, scores_, indices_;
  int64_t k_;
  std::vector<std::pair<int64_t, int64_t>> excluded_;  // sorted by corpus row
};

// The corpus [N, C] scored in chunks of `chunk_rows` rows.
TopK chunked_top_k(const torch::Tensor& queries, const torch::Tensor& corpus, int64_t k,
                   int64_t chunk_rows = 16384);
// The obvious reference: the full [Q, N] score matrix, then torch::topk.
TopK full_top_k(const torch::Tensor& queries, const torch::Tensor& corpus, int64_t k);

}  // namespace bireco::eval
