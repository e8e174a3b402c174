// Chunked exact top-k search and its full-matrix reference.
#include "bireco/eval/search.h"

#include <algorithm>
#include <limits>

#include "bireco/util/error.h"

namespace bireco::eval {

RunningTopK::RunningTopK(torch::Tensor queries, int64_t k) : queries_(std::move(queries)), k_(k) {
  if (k <= 0) throw Error("top-k search: k must be positive");
}

void RunningTopK::add(const torch::Tensor& docs, int64_t offset) {
  if (docs.size(0) == 0) return;
  auto d = docs.to(queries_.device(), queries_.scalar_type());
  auto s = torch::matmul(queries_, d.t()).to(torch::kFloat32);  // (Q, n)
  // The excluded pairs whose document is in this chunk (excluded_ is sorted by corpus row).
  const auto first = std::lower_bound(excluded_.begin(), excluded_.end(), offset,
                                      [](const auto& p, int64_t row) { return p.second < row; });
  std::vector<int64_t> rows, cols;
  for (auto it = first; it != excluded_.end() && it->second < offset + docs.size(0); ++it) {
    rows.push_back(it->first);
    cols.push_back(it->second - offset);
  }
  if (!rows.empty()) {
    const auto where = [&](const std::vector<int64_t>& v) {
      return torch::tensor(v, torch::kLong).to(s.device());
    };
    s.index_put_({where(rows), where(cols)}, -std::numeric_limits<float>::infinity());
  }
  auto [values, idx] = s.topk(std::min<int64_t>(k_, s.size(1)), /*dim=*/1);
  idx = idx + offset;
  if (scores_.defined()) {
    values = torch::cat({scores_, values}, 1);
    idx = torch::cat({indices_, idx}, 1);
    auto [best, where] = values.topk(std::min<int64_t>(k_, values.size(1)), 1);
    values = best;
    idx = idx.gather(1, where);
  }
  scores_ = values;
  indices_ = idx;
}

void RunningTopK::exclude(std::vector<std::pair<int64_t, int64_t>> pairs) {
  std::sort(pairs.begin(), pairs.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  excluded_ = std::move(pairs);
}

TopK RunningTopK::result() const {
  if (!scores_.defined()) {
    return {torch::zeros({queries_.size(0), 0}), torch::zeros({queries_.size(0), 0}, torch::kLong)};
  }
  return {scores_.to(torch::kCPU), indices_.to(torch::kCPU)};
}

TopK chunked_top_k(const torch::Tensor& queries, const torch::Tensor& corpus, int64_t k,
                   int64_t chunk_rows) {
  RunningTopK top(queries, k);
  for (int64_t start = 0; start < corpus.size(0); start += chunk_rows)
    top.add(corpus.slice(0, start, std::min(corpus.size(0), start + chunk_rows)), start);
  return top.result();
}

TopK full_top_k(const torch::Tensor& queries, const torch::Tensor& corpus, int64_t k) {
  auto s = torch::matmul(queries, corpus.to(queries.device(), queries.scalar_type()).t()).to(torch::kFloat32);  // (Q, N)
  auto [values, idx] = s.topk(std::min<int64_t>(k, s.size(1)), 1);
  return {values.to(torch::kCPU), idx.to(torch::kCPU)};
}

}  // namespace bireco::eval
