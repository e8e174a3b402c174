// The objectives with padding-free passes (model.padding_free, the default) against the same
// objectives run padded: stage I's reconstruction with its prefix vector, InfoNCE with LoRA
// (plain and GradCache), and the evaluation encoder, loss and every gradient to 1e-5 in fp32,
// with gradient checkpointing on, on blocks whose texts differ in length (so that padding exists).
#include <gtest/gtest.h>

#include <map>

#include "bireco/eval/encoder.h"
#include "bireco/model/lora.h"
#include "bireco/objective/contrastive.h"
#include "bireco/objective/reconstruction.h"
#include "objective_test_util.h"

namespace bireco::objective {
namespace {

using model::test_util::max_diff;
using test_util::random_block;
using test_util::tiny_model;

constexpr int64_t kVocab = 48;

struct Step {
  double loss = 0;
  std::map<std::string, torch::Tensor> grads;
};

// One micro-step of `objective` on a fresh tiny model (LoRA r 4 without dropout when `lora`),
// gradient checkpointing on, in training mode.
Step step_of(Objective& objective, const data::Batch& batch, bool padding_free, bool lora) {
  auto m = tiny_model(kVocab);
  if (lora) {
    config::LoraConfig l;
    l.r = 4;
    l.dropout = 0.0;  // dropout masks are drawn over other shapes in the two layouts
    model::apply_lora(m, l, 3);
    torch::NoGradGuard no_grad;  // B = 0 would leave the adapters without effect on the loss
    for (auto& p : m->named_parameters())
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.05);
  }
  m->padding_free = padding_free;
  m->gradient_checkpointing = true;
  m->train();
  auto out = objective.compute(m, batch, 0, objective.count(batch));
  if (!out.backward_done) out.loss.backward();
  Step s;
  s.loss = out.loss.item<double>();
  for (const auto& p : m->named_parameters())
    if (p.value().grad().defined()) s.grads[p.key()] = p.value().grad().clone();
  return s;
}

void expect_equal(const Step& packed, const Step& padded, size_t min_grads) {
  EXPECT_NEAR(packed.loss, padded.loss, 1e-5 * std::max(1.0, std::abs(padded.loss)));
  ASSERT_EQ(packed.grads.size(), padded.grads.size());
  ASSERT_GE(padded.grads.size(), min_grads);
  double worst = 0, largest = 0;
  for (const auto& [name, g] : padded.grads) {
    const double scale = std::max(1.0, g.abs().max().item<double>());
    const double diff = max_diff(packed.grads.at(name), g);
    EXPECT_LE(diff, 1e-5 * scale) << name;
    worst = std::max(worst, diff);
    largest = std::max(largest, g.abs().max().item<double>());
  }
  EXPECT_GT(largest, 0.0) << "no gradient reached the parameters";
  std::printf("loss %.6f packed, %.6f padded; max |gradient difference| %.3g\n", packed.loss, padded.loss, worst);
}

bool has_padding(const data::TextBlock& b) { return (b.attention_mask == 0).any().item<bool>(); }

TEST(PaddingFree, StageOneReconstructionWithPrefixEqualsPaddedPass) {
  data::Batch batch;
  batch.queries = random_block({5, 9, 3}, kVocab, 1);
  batch.positives = random_block({12, 4, 8}, kVocab, 2);
  ASSERT_TRUE(has_padding(batch.queries) && has_padding(batch.positives));
  ReconstructionOptions o;
  o.eos_id = 2;
  o.chunk_tokens = 5;
  Reconstruction objective(o);
  // Every weight trains: 2 layers x 9 tensors, the embeddings and the head.
  expect_equal(step_of(objective, batch, true, false), step_of(objective, batch, false, false), 20);
}

TEST(PaddingFree, InfoNceWithLoraEqualsPaddedPassPlainAndGradCache) {
  data::Batch batch;
  batch.queries = random_block({4, 7, 3, 6}, kVocab, 1);
  batch.positives = random_block({9, 5, 11, 6}, kVocab, 2, 0, data::PaddingSide::kRight);
  batch.negatives = random_block({6, 10, 4, 8}, kVocab, 3);
  for (const int64_t chunk : {0, 2}) {
    ContrastiveOptions o;
    o.gradcache_chunk = chunk;
    Contrastive objective(o);
    SCOPED_TRACE(chunk == 0 ? "plain" : "GradCache chunk 2");
    // The adapters of 7 projections x 2 layers, A and B each.
    expect_equal(step_of(objective, batch, true, true), step_of(objective, batch, false, true), 28);
  }
}

TEST(PaddingFree, EncoderEmbeddingsEqualPaddedPass) {
  std::vector<std::vector<int32_t>> ids;
  torch::manual_seed(4);
  for (int64_t n : {3, 17, 9, 1, 12, 12, 5}) {
    auto row = torch::randint(3, kVocab, {n}, torch::kLong);
    ids.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + n);
  }
  auto embed = [&](bool padding_free) {
    auto m = tiny_model(kVocab);
    m->padding_free = padding_free;
    eval::EncoderSettings settings;
    settings.batch_tokens = 40;  // several batches, each padded to its longest text
    settings.show_progress = false;
    eval::Encoder encoder(m, nullptr, settings);
    return encoder.encode_ids(ids);
  };
  auto packed = embed(true), padded = embed(false);
  EXPECT_LE(max_diff(packed, padded), 1e-5);
  EXPECT_GT(padded.abs().max().item<double>(), 0.0);
  std::printf("embeddings: max |difference| %.3g\n", max_diff(packed, padded));
}

}  // namespace
}  // namespace bireco::objective
