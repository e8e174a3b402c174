// Chunked top-k search against the full score matrix.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "bireco/eval/search.h"

namespace bireco::eval {
namespace {

TEST(EvalSearch, ChunkedTopKEqualsFullMatrixTopK) {
  torch::manual_seed(3);
  const auto queries = torch::nn::functional::normalize(torch::randn({17, 32}));
  const auto corpus = torch::nn::functional::normalize(torch::randn({1000, 32}));
  const TopK full = full_top_k(queries, corpus, 100);
  for (const int64_t chunk : {1000, 333, 64, 7}) {
    const TopK chunked = chunked_top_k(queries, corpus, 100, chunk);
    EXPECT_TRUE(torch::equal(chunked.indices, full.indices)) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(chunked.scores, full.scores, 1e-6, 1e-6)) << "chunk " << chunk;
  }
}

TEST(EvalSearch, FewerDocsThanKKeepsThemAll) {
  const auto queries = torch::eye(2, 4);
  const auto corpus = torch::tensor({{0.f, 1.f, 0.f, 0.f}, {1.f, 0.f, 0.f, 0.f}, {0.5f, 0.5f, 0.f, 0.f}});
  const TopK top = chunked_top_k(queries, corpus, 10, 2);
  ASSERT_EQ(top.indices.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(top.indices[0][0].item<int64_t>(), 1);  // query 0 = e0 matches corpus row 1
  EXPECT_EQ(top.indices[0][1].item<int64_t>(), 2);
  EXPECT_EQ(top.indices[1][0].item<int64_t>(), 0);
}

// Excluded (query, document) pairs never rank, whichever chunk holds the document; the k kept
// are the best of the others. Query 0 = e0 matches rows 1 (1.0), 2 (0.5); query 1 = e1 matches
// rows 0 (1.0), 2 (0.5), 3 (0.25).
TEST(EvalSearch, ExcludedPairsNeverRank) {
  const auto queries = torch::eye(2, 4);
  const auto corpus = torch::tensor(
      {{0.f, 1.f, 0.f, 0.f}, {1.f, 0.f, 0.f, 0.f}, {0.5f, 0.5f, 0.f, 0.f}, {0.f, 0.25f, 0.f, 0.f}});
  for (const int64_t chunk : {4, 3, 1}) {
    RunningTopK top(queries, 2);
    top.exclude({{1, 0}, {0, 1}});
    for (int64_t start = 0; start < 4; start += chunk)
      top.add(corpus.slice(0, start, std::min<int64_t>(4, start + chunk)), start);
    const TopK best = top.result();
    EXPECT_EQ(best.indices[0][0].item<int64_t>(), 2) << "chunk " << chunk;
    EXPECT_FLOAT_EQ(best.scores[0][0].item<float>(), 0.5f);
    EXPECT_EQ(best.indices[1][0].item<int64_t>(), 2) << "chunk " << chunk;
    EXPECT_EQ(best.indices[1][1].item<int64_t>(), 3) << "chunk " << chunk;
    EXPECT_FLOAT_EQ(best.scores[1][1].item<float>(), 0.25f);
  }
}

}  // namespace
}  // namespace bireco::eval
