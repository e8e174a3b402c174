// SDPA (scaled_dot_product_attention with enable_gqa, is_causal where nothing is padded) against
// plain_attention, its slow reference: the whole model's forward and every gradient, for each
// visibility pattern training produces (left / right padding, the stage-I prefix vector,
// bidirectional attention, a sliding window), in fp32 and in bf16, on each test device (on
// CUDA, the mask-free cases run the flash / memory-efficient kernels).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include "bireco/model/load.h"
#include "bireco/model/transformer.h"
#include "model_test_util.h"

namespace bireco::model {
namespace {

using test_util::max_diff;
using test_util::test_devices;
using test_util::tiny_llama_config;

constexpr int64_t kBatch = 3, kTime = 9, kVocab = 64;

struct Case {
  std::string name;
  std::string padding;  // none | left | right: rows of 9, 6 and 3 real tokens
  bool bidirectional = false;
  int64_t window = 0;   // sliding_window (0: none)
  bool prefix = false;  // stage I: a free vector at position 0 instead of the first token
  bool expect_mask;     // whether a mask tensor is needed (false: SDPA runs mask-free)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

torch::Tensor attention_mask(const std::string& padding) {
  auto mask = torch::ones({kBatch, kTime}, torch::kLong);
  if (padding == "none") return mask;
  const int64_t lengths[kBatch] = {kTime, 6, 3};
  for (int64_t b = 0; b < kBatch; ++b) {
    const int64_t pad = kTime - lengths[b];
    if (padding == "left") mask[b].narrow(0, 0, pad).zero_();
    if (padding == "right") mask[b].narrow(0, lengths[b], pad).zero_();
  }
  return mask;
}

// What a training step needs from one attention implementation: the final hidden states,
// every parameter's gradient and the gradient reaching the input embeddings (through which
// stage I trains the prefix).
struct Pass {
  torch::Tensor hidden, embeds_grad;
  std::map<std::string, torch::Tensor> grads;
};

class Sdpa : public ::testing::TestWithParam<std::tuple<Case, std::string>> {
 protected:
  Pass run(bool sdpa, torch::ScalarType dtype) {
    const Case& c = std::get<0>(GetParam());
    const torch::Device device(std::get<1>(GetParam()));
    const auto on = torch::TensorOptions(dtype).device(device);
    auto config = tiny_llama_config(kVocab);
    config.sliding_window = c.window;
    Transformer model(config);
    init_random(model, 11);
    model->to(device, dtype);
    model->bidirectional = c.bidirectional;
    model->padding_free = false;  // the padded pass: the layout SDPA and plain_attention share
    for (size_t l = 0; l < model->layers->size(); ++l)
      model->layers->ptr<DecoderLayerImpl>(l)->self_attn->use_sdpa = sdpa;

    torch::manual_seed(5);
    auto ids = torch::randint(3, kVocab, {kBatch, kTime}).to(device);
    auto mask = attention_mask(c.padding);  // on the CPU, as the collator's
    auto embeds = model->embed_tokens(ids).detach();
    if (c.prefix) {  // the prefix sits at each row's first real position
      auto first_real =
          (mask.cumsum(1) == 1).logical_and(mask.to(torch::kBool)).unsqueeze(-1).to(device);
      embeds =
          torch::where(first_real, torch::randn({kBatch, 1, config.hidden_size}).to(on), embeds);
    }
    embeds.requires_grad_(true);
    EXPECT_EQ(model->attention_inputs(embeds, mask).allowed.defined(), c.expect_mask)
        << "the visibility path differs from the one this case is meant to test";

    auto hidden = model->forward_embeds(embeds, mask).last_hidden_state;  // (B, T, C)
    // A loss that weighs every real output differently, so every gradient is exercised.
    const auto real = mask.unsqueeze(-1).to(on);
    auto weights = torch::randn(hidden.sizes()).to(on) * real;
    (hidden * weights).sum().backward();

    Pass pass;
    pass.hidden = hidden.detach() * real;  // padding rows are ignored
    pass.embeds_grad = embeds.grad();
    for (const auto& p : model->named_parameters())  // lm_head takes no part in forward_embeds
      if (p.value().grad().defined()) pass.grads[p.key()] = p.value().grad();
    return pass;
  }

  // Compares every tensor of `fast` with `reference` to bound * max(1, max|reference|).
  static void expect_near(const Pass& fast, const Pass& reference, double bound) {
    auto check = [bound](const std::string& what, const torch::Tensor& a, const torch::Tensor& b) {
      ASSERT_TRUE(a.defined() && b.defined()) << what;
      const double scale = std::max(1.0, b.abs().max().item<double>());
      EXPECT_LE(max_diff(a, b), bound * scale) << what << " (max |reference| " << scale << ")";
    };
    check("last hidden state", fast.hidden, reference.hidden);
    check("input embeddings' gradient", fast.embeds_grad, reference.embeds_grad);
    ASSERT_EQ(fast.grads.size(), reference.grads.size());
    ASSERT_GE(reference.grads.size(), 2u * 9u);  // every projection and norm of both layers
    for (const auto& [name, g] : reference.grads) check(name + " gradient", fast.grads.at(name), g);
    // The reference did something: the hidden states and gradients are not all zero.
    EXPECT_GT(reference.hidden.abs().max().item<double>(), 0.0);
    EXPECT_GT(reference.embeds_grad.abs().max().item<double>(), 0.0);
  }
};

TEST_P(Sdpa, Fp32ForwardAndGradientsEqualPlainAttention) {
  expect_near(run(true, torch::kFloat32), run(false, torch::kFloat32), 1e-5);
}

// Bound: in bf16 plain attention rounds its scores, probabilities and output to bf16 (three
// roundings of relative error <= 2^-9 each), SDPA's kernel accumulates in fp32 and rounds its
// output once: the two attention outputs differ by at most 4 * 2^-9 = 2^-7 relative per layer.
// Each of the L layers and the final norm carries such a difference on, so the outputs (and,
// by the same count through backward, the gradients) differ by at most 2 * (L + 1) * 2^-7
// relative to their largest value.
TEST_P(Sdpa, Bf16ForwardAndGradientsNearPlainAttention) {
  const int64_t layers = tiny_llama_config(kVocab).num_hidden_layers;
  const double bound = 2.0 * static_cast<double>(layers + 1) * std::ldexp(1.0, -7);
  expect_near(run(true, torch::kBFloat16), run(false, torch::kBFloat16), bound);
}

INSTANTIATE_TEST_SUITE_P(
    Visibility, Sdpa,
    ::testing::Combine(
        ::testing::Values(Case{"causal_unpadded", "none", false, 0, false, false},
                          Case{"causal_left_padded", "left", false, 0, false, true},
                          Case{"causal_right_padded", "right", false, 0, false, true},
                          Case{"stage1_prefix_unpadded", "none", false, 0, true, false},
                          Case{"stage1_prefix_left_padded", "left", false, 0, true, true},
                          Case{"bidirectional_unpadded", "none", true, 0, false, false},
                          Case{"bidirectional_right_padded", "right", true, 0, false, true},
                          Case{"sliding_window_shorter_than_text", "none", false, 4, false, true},
                          Case{"sliding_window_longer_than_text", "none", false, 64, false, false},
                          Case{"sliding_window_left_padded", "left", false, 4, false, true}),
        ::testing::ValuesIn(test_devices())),
    [](const ::testing::TestParamInfo<std::tuple<Case, std::string>>& info) {
      return std::get<0>(info.param).name + "_" + std::get<1>(info.param);
    });

}  // namespace
}  // namespace bireco::model
