// Stage II InfoNCE: parity with the hf-parity fixtures (transformers embeddings, plain torch
// loss), hard-negative selection, and GradCache equal to the plain path (loss and gradients).
#include <gtest/gtest.h>

#include "../model/model_test_util.h"
#include "bireco/model/lora.h"
#include "bireco/objective/contrastive.h"
#include "bireco/util/compat.h"
#include "bireco/util/error.h"

namespace bireco::objective {
namespace {

using model::test_util::fixtures;
using model::test_util::load_fixture_model;

data::TextBlock rows_of(const torch::Tensor& ids, const torch::Tensor& mask, int64_t begin, int64_t end) {
  data::TextBlock b;
  b.input_ids = ids.slice(0, begin, end);
  b.attention_mask = mask.slice(0, begin, end);
  return b;
}

class ContrastiveParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ContrastiveParity, ScoresAndLossMatchTransformersFixture) {
  auto model = load_fixture_model(GetParam());
  auto f = fixtures(GetParam());
  auto ids = f.at("infonce_input_ids"), mask = f.at("infonce_attention_mask");
  data::Batch batch;
  batch.queries = rows_of(ids, mask, 0, 3);
  batch.positives = rows_of(ids, mask, 3, 6);
  batch.negatives = rows_of(ids, mask, 6, 9);  // k = 1: row i is query i's negative
  ContrastiveOptions options;                  // defaults: scale 50, cosine, 1 negative
  Contrastive objective(options);
  torch::NoGradGuard no_grad;
  auto out = objective.compute(model, batch, 0, objective.count(batch));
  EXPECT_NEAR(out.loss.item<double>(), f.at("infonce_loss").item<double>(), 1e-4);

  auto emb = f.at("infonce_embeddings");
  auto scores = similarity_scores(emb.slice(0, 0, 3), emb.slice(0, 3, 9), options);
  EXPECT_LT(model::test_util::max_diff(scores, f.at("infonce_scores")), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Archs, ContrastiveParity, ::testing::Values("llama", "qwen2", "mistral"));

TEST(Contrastive, LossEqualsHandComputedCrossEntropyOverPositivesAndNegatives) {
  // Two queries, orthogonal unit documents: scores are 50 * cosine exactly.
  auto q = torch::tensor({{1.0f, 0.0f, 0.0f}, {0.0f, 2.0f, 0.0f}});
  auto p = torch::tensor({{1.0f, 1.0f, 0.0f}, {0.0f, 1.0f, 0.0f}});
  auto n = torch::tensor({{0.0f, 0.0f, 1.0f}, {1.0f, 0.0f, 0.0f}});
  ContrastiveOptions o;
  auto got = info_nce(q, p, n, o, nullptr);
  const double c = 50 / std::sqrt(2.0);
  // query 0: scores [c, 0, 0, 50], target 0; query 1: [c, 50, 0, 0], target 1.
  const double l0 = -c + std::log(std::exp(c) + 2 + std::exp(50.0));
  const double l1 = -50 + std::log(std::exp(c) + std::exp(50.0) + 2);
  EXPECT_NEAR(got.sum.item<double>(), l0 + l1, 1e-4);
  EXPECT_EQ(got.correct.item<int64_t>(), 1);
}

TEST(Contrastive, UsesFirstKHardNegativesOfEachQuery) {
  data::Batch batch;
  batch.queries.input_ids = torch::zeros({2, 1}, torch::kLong);
  batch.negatives.input_ids = torch::arange(6, torch::kLong).unsqueeze(1);  // rows i*3 + j
  batch.negatives.attention_mask = torch::ones({6, 1}, torch::kLong);
  ContrastiveOptions o;
  o.hard_negatives = 2;
  auto used = Contrastive(o).used_negatives(batch);
  EXPECT_TRUE(torch::equal(used.input_ids.flatten(), torch::tensor({0, 1, 3, 4}, torch::kLong)));
  o.hard_negatives = 4;
  EXPECT_THROW(Contrastive(o).used_negatives(batch), Error);
  o.hard_negatives = 0;
  EXPECT_FALSE(Contrastive(o).used_negatives(batch).input_ids.defined());
}

// A small random model with LoRA (or, with_lora false, every weight trained).
model::Transformer lora_model(double dropout, bool with_lora = true) {
  model::Transformer m(model::test_util::tiny_llama_config(40));
  model::init_random(m, 5);
  if (!with_lora) {
    m->lm_head_weight.set_requires_grad(false);  // stage II never uses the head
    m->train();
    return m;
  }
  config::LoraConfig lora;
  lora.r = 4;
  lora.dropout = dropout;
  model::apply_lora(m, lora, 6);
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters())  // B starts at zero: give it values so A gets gradients
    if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0, 0.1);
  m->train();
  return m;
}

data::TextBlock random_block(int64_t rows, int64_t length, int64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  data::TextBlock b;
  b.input_ids = torch::randint(3, 40, {rows, length}, torch::kLong);
  b.attention_mask = torch::ones({rows, length}, torch::kLong);
  b.attention_mask.index_put_({0, torch::indexing::Slice(0, 2)}, 0);  // one left-padded row
  return b;
}

std::map<std::string, torch::Tensor> run_and_take_grads(model::Transformer& m, Contrastive& objective,
                                                        const data::Batch& batch, double& loss,
                                                        bool bf16_autocast = false) {
  for (auto& p : m->parameters())
    if (p.grad().defined()) p.mutable_grad().zero_();
  torch::manual_seed(11);  // the same dropout stream for both paths
  ObjectiveOutput out;
  {
    compat::AutocastGuard autocast(torch::Device(torch::kCPU), bf16_autocast);  // as the trainer does
    out = objective.compute(m, batch, 0, {{"queries", 8.0}});  // as if one of two micro-batches
  }
  if (!out.backward_done) out.loss.backward();
  loss = out.loss.item<double>();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& item : m->named_parameters())
    if (item.value().requires_grad()) grads[item.key()] = item.value().grad().clone();
  return grads;
}

// (dropout, chunk): chunks that do not divide the blocks without dropout; with LoRA dropout,
// one chunk per block, so that the plain path draws the same masks and only GradCache's
// replay of the generator state for the recomputed chunks keeps the gradients equal.
class GradCache : public ::testing::TestWithParam<std::pair<double, int64_t>> {};

TEST_P(GradCache, LossAndGradientsEqualPlainPath) {
  auto m = lora_model(GetParam().first);
  data::Batch batch;
  batch.queries = random_block(4, 7, 1);
  batch.positives = random_block(4, 9, 2);
  batch.negatives = random_block(8, 6, 3);  // k = 2 in the batch, 1 used
  for (bool symmetric : {false, true}) {
    ContrastiveOptions plain_options;
    plain_options.symmetric = symmetric;
    auto cached_options = plain_options;
    cached_options.gradcache_chunk = GetParam().second;
    Contrastive plain(plain_options), cached(cached_options);
    double plain_loss = 0, cached_loss = 0;
    auto expected = run_and_take_grads(m, plain, batch, plain_loss);
    auto got = run_and_take_grads(m, cached, batch, cached_loss);
    EXPECT_NEAR(cached_loss, plain_loss, 1e-6 * std::abs(plain_loss)) << "symmetric " << symmetric;
    double largest = 0;
    for (const auto& [name, g] : expected) {
      largest = std::max(largest, g.abs().max().item<double>());
      EXPECT_LT((got.at(name) - g).abs().max().item<double>(), 1e-5 * (1 + g.abs().max().item<double>())) << name;
    }
    EXPECT_GT(largest, 1e-4);  // the gradients are not all zero
  }
}

INSTANTIATE_TEST_SUITE_P(Chunks, GradCache,
                         ::testing::Values(std::make_pair(0.0, int64_t{3}), std::make_pair(0.2, int64_t{100})));

// Under gradient checkpointing, as users train, GradCache with gradcache_recompute off runs its
// pass with gradients without checkpointing (the chunk bounds the activations): the same loss and
// gradients as the checkpointed plain path, the dropout masks included, and the model's
// setting is back afterwards.
TEST_P(GradCache, WithoutRecomputeUnderCheckpointingEqualsPlainPath) {
  auto m = lora_model(GetParam().first);
  m->gradient_checkpointing = true;
  data::Batch batch;
  batch.queries = random_block(4, 7, 1);
  batch.positives = random_block(4, 9, 2);
  batch.negatives = random_block(8, 6, 3);
  ContrastiveOptions plain_options;
  auto cached_options = plain_options;
  cached_options.gradcache_chunk = GetParam().second;
  cached_options.gradcache_recompute = false;
  Contrastive plain(plain_options), cached(cached_options);
  double plain_loss = 0, cached_loss = 0;
  auto expected = run_and_take_grads(m, plain, batch, plain_loss);
  auto got = run_and_take_grads(m, cached, batch, cached_loss);
  EXPECT_TRUE(m->gradient_checkpointing);
  EXPECT_NEAR(cached_loss, plain_loss, 1e-6 * std::abs(plain_loss));
  double largest = 0;
  for (const auto& [name, g] : expected) {
    largest = std::max(largest, g.abs().max().item<double>());
    EXPECT_LT((got.at(name) - g).abs().max().item<double>(), 1e-5 * (1 + g.abs().max().item<double>())) << name;
  }
  EXPECT_GT(largest, 1e-4);
}

// bf16-mixed, every weight trained (so autocast caches the weights' bf16 casts): GradCache's
// no-grad first pass must not leave casts without autograd history for its second pass to
// reuse, or the weights would get no gradient at all.
TEST(GradCacheBf16Mixed, LossAndGradientsEqualPlainPath) {
  auto m = lora_model(0.0, /*with_lora=*/false);
  data::Batch batch;
  batch.queries = random_block(4, 7, 1);
  batch.positives = random_block(4, 9, 2);
  batch.negatives = random_block(8, 6, 3);
  ContrastiveOptions plain_options;
  auto cached_options = plain_options;
  // One chunk per block: the passes then run the same shapes as the plain path (LibTorch's CPU
  // bf16 bmm rounds differently for another batch size, ~1 bf16 ulp of the attention scores).
  cached_options.gradcache_chunk = 4;
  Contrastive plain(plain_options), cached(cached_options);
  double plain_loss = 0, cached_loss = 0, fp32_loss = 0;
  run_and_take_grads(m, plain, batch, fp32_loss);
  auto expected = run_and_take_grads(m, plain, batch, plain_loss, true);
  auto got = run_and_take_grads(m, cached, batch, cached_loss, true);
  EXPECT_NE(plain_loss, fp32_loss) << "autocast did not act";
  EXPECT_NEAR(cached_loss, plain_loss, 1e-6 * std::abs(plain_loss));
  // The same bf16 products in both paths (GradCache backpropagates outside autocast, as the
  // trainer does): only fp32 summation order separates them.
  for (const auto& [name, g] : expected) {
    const double scale = g.abs().max().item<double>();
    EXPECT_GT(scale, 0.0) << name;
    EXPECT_LE((got.at(name) - g).abs().max().item<double>(), 1e-6 * scale) << name;
  }
}

}  // namespace
}  // namespace bireco::objective
