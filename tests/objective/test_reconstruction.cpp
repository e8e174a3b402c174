// Stage I reconstruction and the chunked loss: parity with transformers' losses on the
// hf-parity fixtures, chunked == plain (loss and gradients), gradients through the prefix.
#include <gtest/gtest.h>

#include "../model/model_test_util.h"
#include "objective_test_util.h"
#include "bireco/data/collator.h"
#include "bireco/model/load.h"
#include "bireco/objective/causal_lm.h"
#include "bireco/objective/chunked_loss.h"
#include "bireco/objective/reconstruction.h"
#include "bireco/util/compat.h"

namespace bireco::objective {
namespace {

using model::test_util::fixtures;
using model::test_util::load_fixture_model;
using test_util::random_block;
using test_util::tiny_model;

data::TextBlock block_of(const torch::Tensor& ids, const torch::Tensor& mask) {
  data::TextBlock b;
  b.input_ids = ids;
  b.attention_mask = mask;
  b.prefix_length = torch::zeros({ids.size(0)}, torch::kLong);
  return b;
}

// The fixtures' labels include the final EOS (id 2): transformers was given them as they are.
ReconstructionOptions fixture_options() {
  ReconstructionOptions o;
  o.predict_eos = true;
  o.eos_id = 2;
  o.chunk_tokens = 3;  // several chunks per sequence
  return o;
}

class ReconstructionParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ReconstructionParity, SingleLossMatchesTransformersThroughChunkedLoss) {
  auto model = load_fixture_model(GetParam());
  auto f = fixtures(GetParam());
  torch::NoGradGuard no_grad;
  auto ids = f.at("recon_target_ids").unsqueeze(0);
  auto loss = reconstruction_loss(model, f.at("recon_prefix"), block_of(ids, torch::ones_like(ids)),
                                  fixture_options());
  EXPECT_EQ(loss.tokens, ids.size(1));
  EXPECT_NEAR(loss.sum.item<double>() / loss.tokens, f.at("recon_loss").item<double>(), 1e-4);
}

TEST_P(ReconstructionParity, BatchLossAndPairLossesMatchTransformers) {
  auto model = load_fixture_model(GetParam());
  auto f = fixtures(GetParam());
  torch::NoGradGuard no_grad;
  auto ids = f.at("recon_batch_target_ids");
  auto mask = f.at("recon_batch_attention_mask").slice(1, 1);  // drop the prefix slot
  auto target = block_of(ids, mask);
  const auto options = fixture_options();
  auto whole = reconstruction_loss(model, f.at("recon_batch_prefix"), target, options);
  EXPECT_NEAR(whole.sum.item<double>() / whole.tokens, f.at("recon_batch_loss").item<double>(), 1e-4);

  // Per-pair losses out of the same batched pass.
  auto in = reconstruction_inputs(model, f.at("recon_batch_prefix"), target, options);
  auto hidden = model->forward_embeds(in.embeds, in.attention_mask).last_hidden_state;
  auto expected = f.at("recon_batch_pair_losses");
  for (int64_t i = 0; i < 3; ++i) {
    auto pair = chunked_token_loss(hidden[i], head_weight(model), in.labels[i], options.chunk_tokens);
    EXPECT_NEAR(pair.sum.item<double>() / pair.tokens, expected[i].item<double>(), 1e-4) << "pair " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, ReconstructionParity, ::testing::Values("llama", "qwen2", "mistral"));

TEST(ChunkedLoss, EqualsPlainLossAndGradientsForEveryChunkSize) {
  // In float64, so that only summation order separates the two (differences ~1e-15).
  torch::manual_seed(5);
  const int64_t n = 23, c = 16, v = 40;
  auto labels = torch::randint(0, v, {n}, torch::kLong);
  labels.index_put_({torch::tensor({0, 7, 8, 22})}, kIgnoreLabel);
  auto hidden0 = torch::randn({n, c}, torch::kFloat64);
  auto weight0 = torch::randn({v, c}, torch::kFloat64);
  // A loss weight other than 1, as the trainer's d2q / q2d weights and token mean give.
  const double scale = 0.37;
  auto run = [&](int64_t chunk, HeadGradient mode) {
    auto h = hidden0.clone().requires_grad_(true);
    auto w = weight0.clone().requires_grad_(true);
    auto loss = chunk < 0 ? plain_token_loss(h, w, labels) : chunked_token_loss(h, w, labels, chunk, mode);
    (loss.sum * scale).backward();
    return std::make_tuple(loss, h.grad(), w.grad());
  };
  auto [plain, plain_dh, plain_dw] = run(-1, HeadGradient::kFused);
  EXPECT_EQ(plain.tokens, n - 4);
  for (HeadGradient mode : {HeadGradient::kFused, HeadGradient::kRecompute}) {
    for (int64_t chunk : {1, 4, 7, 0, 4096}) {
      const std::string where = "chunk " + std::to_string(chunk) +
                                (mode == HeadGradient::kFused ? " fused" : " recompute");
      auto [loss, dh, dw] = run(chunk, mode);
      EXPECT_NEAR(loss.sum.item<double>(), plain.sum.item<double>(), 1e-12) << where;
      EXPECT_EQ(loss.tokens, plain.tokens);
      EXPECT_EQ(loss.correct.item<int64_t>(), plain.correct.item<int64_t>());
      EXPECT_LT((dh - plain_dh).abs().max().item<double>(), 1e-12) << where;
      EXPECT_LT((dw - plain_dw).abs().max().item<double>(), 1e-12) << where;
    }
  }
}

TEST(ChunkedLoss, FrozenHeadGetsNoGradientAndHiddenStillDoes) {
  // A frozen head (LoRA in stage I) and evaluation (nothing needs a gradient) in both modes.
  torch::manual_seed(6);
  auto labels = torch::randint(0, 30, {11}, torch::kLong);
  auto w = torch::randn({30, 8}, torch::kFloat64);
  auto h0 = torch::randn({11, 8}, torch::kFloat64);
  auto plain_h = h0.clone().requires_grad_(true);
  plain_token_loss(plain_h, w, labels).sum.backward();
  for (HeadGradient mode : {HeadGradient::kFused, HeadGradient::kRecompute}) {
    auto h = h0.clone().requires_grad_(true);
    chunked_token_loss(h, w, labels, 4, mode).sum.backward();
    EXPECT_FALSE(w.grad().defined());
    EXPECT_LT((h.grad() - plain_h.grad()).abs().max().item<double>(), 1e-12);
    const auto evaluation = chunked_token_loss(h0, w, labels, 4, mode);
    EXPECT_FALSE(evaluation.sum.requires_grad());
    EXPECT_NEAR(evaluation.sum.item<double>(), plain_token_loss(h0, w, labels).sum.item<double>(), 1e-12);
  }
}

TEST(ChunkedLoss, HeadGradientModeComesFromTheConfig) {
  config::StageConfig c;
  EXPECT_EQ(reconstruction_options(c, 2).head_gradient, HeadGradient::kFused);
  c.objective.loss_head_gradient = "recompute";
  EXPECT_EQ(reconstruction_options(c, 2).head_gradient, HeadGradient::kRecompute);
}

TEST(ChunkedLoss, ModelGradientsEqualPlainOnesWithTiedAndUntiedHeads) {
  // Through a float32 model: gradients agree to float32 rounding relative to their size.
  for (bool tied : {false, true}) {
    auto m = tiny_model(48, tied);
    auto block = random_block({9, 5, 12}, 48, 3);
    auto labels = next_token_labels(block);
    auto grads = [&](int64_t chunk, HeadGradient mode) {
      m->zero_grad();
      auto h = m->forward(block.input_ids, block.attention_mask).last_hidden_state;
      (chunk < 0 ? plain_token_loss(h, head_weight(m), labels) : chunked_token_loss(h, head_weight(m), labels, chunk, mode))
          .sum.backward();
      std::map<std::string, torch::Tensor> out;
      for (const auto& p : m->named_parameters()) out[p.key()] = p.value().grad().clone();
      return out;
    };
    auto plain = grads(-1, HeadGradient::kFused);
    for (HeadGradient mode : {HeadGradient::kFused, HeadGradient::kRecompute}) {
      auto chunked = grads(5, mode);
      for (const auto& [name, g] : plain) {
        const double scale = std::max(1.0, g.abs().max().item<double>());
        EXPECT_LT((chunked.at(name) - g).abs().max().item<double>(), 1e-5 * scale)
            << name << " tied " << tied << " fused " << (mode == HeadGradient::kFused);
      }
    }
  }
}

TEST(ChunkedLoss, EqualsPlainLossAndGradientsUnderBf16Autocast) {
  // bf16-mixed: the head's matmul runs in bf16 in both paths, the loss in fp32; the fused
  // chunked loss forms its gradients in the caller's autocast state, the recomputing one in
  // the forward's, which its backward re-enters.
  for (bool tied : {false, true}) {
    auto m = tiny_model(48, tied);
    auto block = random_block({9, 5, 12}, 48, 3);
    auto labels = next_token_labels(block);
    auto run = [&](int64_t chunk, bool autocast_on, HeadGradient mode = HeadGradient::kFused) {
      m->zero_grad();
      TokenLoss loss;
      {
        compat::AutocastGuard autocast(torch::Device(torch::kCPU), autocast_on);
        auto h = m->forward(block.input_ids, block.attention_mask).last_hidden_state;
        loss = chunk < 0 ? plain_token_loss(h, head_weight(m), labels)
                         : chunked_token_loss(h, head_weight(m), labels, chunk, mode);
      }
      loss.sum.backward();  // outside the scope, as the trainer runs it
      std::map<std::string, torch::Tensor> grads;
      for (const auto& p : m->named_parameters()) grads[p.key()] = p.value().grad().clone();
      return std::make_pair(loss.sum.item<double>(), grads);
    };
    const double fp32 = run(-1, false).first;
    auto [plain, plain_grads] = run(-1, true);
    EXPECT_NE(plain, fp32) << "autocast did not act";
    const int64_t targets = (labels != kIgnoreLabel).sum().item<int64_t>();
    for (const auto& [chunk, mode] : {std::pair{0, HeadGradient::kFused}, std::pair{5, HeadGradient::kFused},
                                      std::pair{0, HeadGradient::kRecompute}, std::pair{5, HeadGradient::kRecompute}}) {
      auto [chunked, grads] = run(chunk, true, mode);
      EXPECT_NEAR(chunked, plain, 1e-6 * std::abs(plain)) << "chunk " << chunk << " tied " << tied;
      // dh and everything below it are the same bf16 products: the same bits. The head's
      // dW = sum over chunks of dlogits_c^T h_c: plain rounds the whole sum to bf16 once,
      // chunked rounds each of the k partial sums (2^-9 relative each, bf16's 8-bit
      // mantissa) and adds them in fp32, so they differ by at most (k + 1) * 2^-9 of the
      // largest partial, taken here as the largest entry of dW.
      const int64_t k = chunk == 0 ? 1 : (targets + chunk - 1) / chunk;
      const std::string head = tied ? "embed_tokens.weight" : "lm_head.weight";
      for (const auto& [name, g] : plain_grads) {
        if (name != head) {
          EXPECT_TRUE(torch::equal(grads.at(name), g)) << name << " chunk " << chunk << " tied " << tied;
          continue;
        }
        const double bound = static_cast<double>(k + 1) * std::ldexp(1.0, -9) * g.abs().max().item<double>();
        EXPECT_LE((grads.at(name) - g).abs().max().item<double>(), chunk == 0 ? 0.0 : bound) << name << " chunk " << chunk;
      }
    }
  }
}

TEST(Reconstruction, TargetsAreEveryRealTokenButEosUnlessPredictEos) {
  auto block = random_block({6, 4}, 48, 5);
  ReconstructionOptions o;
  o.eos_id = 2;
  EXPECT_EQ(reconstruction_targets(block, o), (6 - 1) + (4 - 1));
  o.predict_eos = true;
  EXPECT_EQ(reconstruction_targets(block, o), 6 + 4);
  auto m = tiny_model();
  auto in = reconstruction_inputs(m, torch::zeros({2, 32}), block, o);
  // Row 1 (4 tokens, left padded by 2): packed to the front, prefix predicts BOS.
  EXPECT_EQ(in.labels[1][0].item<int64_t>(), 1);
  EXPECT_EQ(in.labels[1][3].item<int64_t>(), 2);
  EXPECT_EQ(in.labels[1][4].item<int64_t>(), kIgnoreLabel);
  EXPECT_EQ(in.attention_mask[1].sum().item<int64_t>(), 5);
}

TEST(Reconstruction, PrefixGradientMatchesFiniteDifferences) {
  // Central differences on the prefix vector against autograd through the chunked loss. The
  // model computes norms and softmax in float32, so the step is 1e-2 on the token-mean loss
  // (rounding ~1e-5, truncation ~1e-5 here).
  auto m = tiny_model();
  auto target = random_block({7, 5}, 48, 11);
  ReconstructionOptions o;
  o.eos_id = 2;
  o.chunk_tokens = 4;
  auto mean_loss = [&](const torch::Tensor& prefix) {
    auto l = reconstruction_loss(m, prefix, target, o);
    return l.sum / l.tokens;
  };
  auto prefix = torch::randn({2, 32}).requires_grad_(true);
  auto grad = torch::autograd::grad({mean_loss(prefix)}, {prefix})[0];
  EXPECT_GT(grad.abs().max().item<double>(), 1e-3);
  torch::NoGradGuard no_grad;
  const double eps = 1e-2;
  for (int64_t i : {0, 1}) {
    for (int64_t c : {0, 5, 31}) {
      auto plus = prefix.detach().clone(), minus = prefix.detach().clone();
      plus[i][c] += eps;
      minus[i][c] -= eps;
      const double fd = (mean_loss(plus) - mean_loss(minus)).item<double>() / (2 * eps);
      EXPECT_NEAR(grad[i][c].item<double>(), fd, 1e-3) << i << "," << c;
    }
  }
}

TEST(Reconstruction, EncoderOnlyParametersGetGradientsThroughThePrefix) {
  // A prefix from the encoding pass of the source: the source's own token embeddings are reached
  // only through the prefix vector (the target never contains those ids).
  auto m = tiny_model(48);
  auto source = random_block({6, 6}, 10, 1);  // ids < 10
  auto target = random_block({6, 6}, 10, 2);
  target.input_ids = torch::where(target.input_ids >= 3, target.input_ids + 30, target.input_ids);  // ids 33..39
  ReconstructionOptions o;
  o.eos_id = 2;
  auto prefix = encode_block(m, source, o);
  reconstruction_loss(m, prefix, target, o).sum.backward();
  auto g = m->embed->weight.grad();
  EXPECT_GT(g.slice(0, 3, 10).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(g.slice(0, 10, 33).abs().sum().item<double>(), 0.0);  // used by no one
}

TEST(Reconstruction, TinyModelDrivesBothLossesNearZeroOnEightPairs) {
  auto m = tiny_model(32);
  auto q = random_block({5, 6, 4, 7, 5, 6, 5, 4}, 32, 21);
  auto d = random_block({8, 7, 9, 6, 8, 7, 9, 8}, 32, 22);
  data::Batch batch;
  batch.queries = q;
  batch.positives = d;
  ReconstructionOptions o;
  o.eos_id = 2;
  o.chunk_tokens = 16;
  Reconstruction objective(o);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0));
  auto totals = objective.count(batch);
  std::map<std::string, double> last;
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    auto out = objective.compute(m, batch, step, totals);
    out.loss.backward();
    opt.step();
    last = out.read_metrics();
  }
  EXPECT_LT(last.at("loss_d2q"), 0.05);
  EXPECT_LT(last.at("loss_q2d"), 0.05);
}

TEST(Reconstruction, AlternateModeRunsD2qOnEvenStepsAndQ2dOnOdd) {
  auto m = tiny_model();
  data::Batch batch;
  batch.queries = random_block({5, 6}, 48, 1);
  batch.positives = random_block({7, 4}, 48, 2);
  ReconstructionOptions o;
  o.eos_id = 2;
  o.alternate = true;
  Reconstruction objective(o);
  const auto totals = objective.count(batch);
  for (int64_t step = 0; step < 4; ++step) {
    auto out = objective.compute(m, batch, step, totals);
    const auto metrics = out.read_metrics();
    const bool even = step % 2 == 0;
    EXPECT_EQ(metrics.at("loss_d2q") > 0, even) << step;
    EXPECT_EQ(metrics.at("loss_q2d") > 0, !even) << step;
    EXPECT_NEAR(out.loss.item<double>(), metrics.at(even ? "loss_d2q" : "loss_q2d"), 1e-6);
  }
  o.alternate = false;
  Reconstruction both(o);
  auto out = both.compute(m, batch, 1, totals);
  const auto metrics = out.read_metrics();
  EXPECT_NEAR(out.loss.item<double>(), 0.8 * metrics.at("loss_d2q") + 0.2 * metrics.at("loss_q2d"), 1e-6);
}

// Two micro-batches with unequal target counts: by default every target token of the step
// weighs the same; under reference_quirks (the authors' HF Trainer) each micro-batch's token
// mean counts once.
TEST(Reconstruction, StepLossWeighsTokensEquallyOrMicroBatchMeansUnderReferenceQuirks) {
  auto m = tiny_model();
  data::Batch a, b;
  a.queries = random_block({5, 6}, 48, 1);
  a.positives = random_block({7, 4}, 48, 2);
  b.queries = random_block({12, 9}, 48, 3);
  b.positives = random_block({3, 4}, 48, 4);
  for (const bool quirks : {false, true}) {
    ReconstructionOptions o;
    o.eos_id = 2;
    o.reference_quirks = quirks;
    Reconstruction objective(o);
    const auto ca = objective.count(a), cb = objective.count(b);
    Sums both = ca;
    for (const auto& [name, value] : cb) both[name] += value;
    ASSERT_EQ(both.at("micro_batches"), 2.0);
    ASSERT_NE(ca.at("d2q_targets"), cb.at("d2q_targets"));  // else both rules agree
    // Each micro-batch alone: its own token means per direction.
    const auto alone_a = objective.compute(m, a, 0, ca).read_metrics(),
               alone_b = objective.compute(m, b, 0, cb).read_metrics();
    const double step = objective.compute(m, a, 0, both).loss.item<double>() +
                        objective.compute(m, b, 0, both).loss.item<double>();
    double expected = 0;
    for (const auto& [name, weight] : {std::pair<std::string, double>{"d2q", 0.8}, {"q2d", 0.2}}) {
      const double la = alone_a.at("loss_" + name), lb = alone_b.at("loss_" + name);
      const double na = ca.at(name + "_targets"), nb = cb.at(name + "_targets");
      expected += weight * (quirks ? (la + lb) / 2 : (la * na + lb * nb) / (na + nb));
    }
    EXPECT_NEAR(step, expected, 1e-5) << (quirks ? "reference_quirks" : "default");
  }
}

TEST(Reconstruction, ReferenceQuirksHidePrefixTokensAndCountPositionsOverPadding) {
  auto m = tiny_model();
  auto block = random_block({7, 5}, 48, 9, /*prefix_length=*/3);
  ReconstructionOptions o;
  o.eos_id = 2;
  o.reference_quirks = true;
  auto in = reconstruction_inputs(m, torch::zeros({2, 32}), block, o);
  // Row 1: 2 padding columns, then BOS + 2 hidden prefix tokens, then 2 visible tokens.
  auto expected_mask = torch::tensor({1, 0, 0, 0, 0, 0, 1, 1}, torch::kLong);
  EXPECT_TRUE(torch::equal(in.attention_mask[1], expected_mask));
  EXPECT_TRUE(torch::equal(in.position_ids[1], torch::arange(8, torch::kLong)));
  // BOS (column 3 of the block) is still a target, predicted by input column 2.
  EXPECT_EQ(in.labels[1][2].item<int64_t>(), 1);
  EXPECT_EQ(in.labels[1][0].item<int64_t>(), kIgnoreLabel);  // padding = EOS id
}

}  // namespace
}  // namespace bireco::objective
