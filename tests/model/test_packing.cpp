// Padding-free passes (model/packing.h) against the padded pass they replace: the final hidden
// states at real tokens and every gradient, for each layout training and evaluation produce
// (left / right padding, the stage-I prefix, bidirectional attention, sliding windows, Qwen3's
// q/k norm, gradient checkpointing), in fp32 to 1e-5 and in bf16 within a stated bound, on each
// test device (on CUDA in bf16 the packed pass runs flash attention's varlen kernel).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include "bireco/model/load.h"
#include "bireco/model/packing.h"
#include "bireco/model/transformer.h"
#include "model_test_util.h"

namespace bireco::model {
namespace {

using test_util::max_diff;
using test_util::test_devices;
using test_util::tiny_llama_config;

constexpr int64_t kVocab = 64;

struct Case {
  std::string name;
  std::string padding;  // left | right: rows of 11, 7, 1 and 4 real tokens in 11 columns
  bool bidirectional = false;
  int64_t window = 0;            // sliding_window (0: none)
  bool prefix = false;           // stage I: a free vector at each row's first real position
  bool qk_norm = false;          // Qwen3
  bool checkpointing = false;    // gradient checkpointing in training mode
  bool given_positions = false;  // explicit position_ids (reference_quirks' encoding pass)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

constexpr int64_t kLengths[] = {11, 7, 1, 4};
constexpr int64_t kRows = 4, kTime = 11;

torch::Tensor attention_mask(const std::string& padding) {
  auto mask = torch::zeros({kRows, kTime}, torch::kLong);
  for (int64_t b = 0; b < kRows; ++b) {
    const int64_t n = kLengths[b];
    mask[b].narrow(0, padding == "left" ? kTime - n : 0, n).fill_(1);
  }
  return mask;
}

struct Pass {
  torch::Tensor hidden, embeds_grad;
  std::map<std::string, torch::Tensor> grads;
  double padding_max = 0;  // max |state| at padding: 0 exactly when the pass ran packed
};

class Packing : public ::testing::TestWithParam<std::tuple<Case, std::string>> {
 protected:
  Pass run(bool padding_free, torch::ScalarType dtype) {
    const Case& c = std::get<0>(GetParam());
    const torch::Device device(std::get<1>(GetParam()));
    const auto on = torch::TensorOptions(dtype).device(device);
    auto config = tiny_llama_config(kVocab);
    config.sliding_window = c.window;
    config.qk_norm = c.qk_norm;
    Transformer model(config);
    init_random(model, 11);
    model->to(device, dtype);
    model->bidirectional = c.bidirectional;
    model->padding_free = padding_free;
    model->gradient_checkpointing = c.checkpointing;
    model->train(c.checkpointing);

    torch::manual_seed(5);
    auto ids = torch::randint(3, kVocab, {kRows, kTime}).to(device);
    auto mask = attention_mask(c.padding);  // on the CPU, as the collator's
    auto embeds = model->embed_tokens(ids).detach();
    if (c.prefix) {
      auto first_real = (mask.cumsum(1) == 1).logical_and(mask.to(torch::kBool)).unsqueeze(-1).to(device);
      embeds = torch::where(first_real, torch::randn({kRows, 1, config.hidden_size}).to(on), embeds);
    }
    embeds.requires_grad_(true);
    torch::Tensor positions;  // 0..T-1 over the padding, as reference_quirks encodes
    if (c.given_positions) positions = torch::arange(kTime, torch::kLong).unsqueeze(0).expand({kRows, kTime});

    auto hidden = model->forward_embeds(embeds, mask, false, positions).last_hidden_state;  // (B, T, C)
    const auto real = mask.unsqueeze(-1).to(on);
    auto weights = torch::randn(hidden.sizes()).to(on) * real;
    (hidden * weights).sum().backward();

    Pass pass;
    pass.padding_max = (hidden.detach() * (1 - real)).abs().max().item<double>();
    pass.hidden = hidden.detach() * real;
    pass.embeds_grad = embeds.grad();
    for (const auto& p : model->named_parameters())
      if (p.value().grad().defined()) pass.grads[p.key()] = p.value().grad();
    return pass;
  }

  static void expect_near(const Pass& packed, const Pass& padded, double bound) {
    // The paths compared are the ones meant: the packed pass writes zeros at padding, the
    // padded pass computes states there too.
    EXPECT_EQ(packed.padding_max, 0.0) << "the padding-free pass did not run packed";
    EXPECT_GT(padded.padding_max, 0.0) << "the reference did not run padded";
    auto check = [bound](const std::string& what, const torch::Tensor& a, const torch::Tensor& b) -> double {
      EXPECT_TRUE(a.defined() && b.defined()) << what;
      if (!a.defined() || !b.defined()) return 0.0;
      const double scale = std::max(1.0, b.abs().max().item<double>());
      const double diff = max_diff(a, b);
      EXPECT_LE(diff, bound * scale) << what << " (max |reference| " << scale << ")";
      return diff;
    };
    double worst = check("last hidden state", packed.hidden, padded.hidden);
    worst = std::max(worst, check("input embeddings' gradient", packed.embeds_grad, padded.embeds_grad));
    ASSERT_EQ(packed.grads.size(), padded.grads.size());
    ASSERT_GE(padded.grads.size(), 2u * 9u);
    for (const auto& [name, g] : padded.grads) worst = std::max(worst, check(name + " gradient", packed.grads.at(name), g));
    EXPECT_GT(padded.hidden.abs().max().item<double>(), 0.0);
    EXPECT_GT(padded.embeds_grad.abs().max().item<double>(), 0.0);
    std::printf("packed vs padded: max |difference| %.3g\n", worst);
  }
};

TEST_P(Packing, Fp32PackedPassEqualsPaddedPass) {
  expect_near(run(true, torch::kFloat32), run(false, torch::kFloat32), 1e-5);
}

// Bound: both passes round every op's output to bf16 (relative error <= 2^-9); they differ in
// attention (per-sequence or flash varlen against one masked SDPA call, accumulating in fp32
// each) and in summation order, by at most 4 * 2^-9 relative per layer, carried through the L
// layers and the final norm: 2 * (L + 1) * 2^-7 of the largest value (as tests/model/test_sdpa).
TEST_P(Packing, Bf16PackedPassNearPaddedPass) {
  const int64_t layers = tiny_llama_config(kVocab).num_hidden_layers;
  const double bound = 2.0 * static_cast<double>(layers + 1) * std::ldexp(1.0, -7);
  expect_near(run(true, torch::kBFloat16), run(false, torch::kBFloat16), bound);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, Packing,
    ::testing::Combine(
        ::testing::Values(Case{"causal_left_padded", "left"}, Case{"causal_right_padded", "right"},
                          Case{"stage1_prefix_right_padded", "right", false, 0, true},
                          Case{"stage1_prefix_left_padded", "left", false, 0, true},
                          Case{"bidirectional_left_padded", "left", true},
                          Case{"sliding_window_left_padded", "left", false, 3},
                          Case{"sliding_window_bidirectional", "right", true, 3},
                          Case{"qwen3_qk_norm", "left", false, 0, false, true},
                          Case{"checkpointing_left_padded", "left", false, 0, false, false, true},
                          Case{"given_positions_left_padded", "left", false, 0, false, false, false, true}),
        ::testing::ValuesIn(test_devices())),
    [](const ::testing::TestParamInfo<std::tuple<Case, std::string>>& info) {
      return std::get<0>(info.param).name + "_" + std::get<1>(info.param);
    });

// The layout itself, by hand: offsets, the flattened index of each real token and its position.
TEST(PackLayout, OffsetsIndexAndPositionsOfALeftPaddedBlock) {
  auto mask = torch::tensor({0, 1, 1, 1, 0, 0, 0, 1}, torch::kLong).view({2, 4});
  const auto layout = pack_layout(mask, {}, torch::kCPU);
  EXPECT_EQ(layout.offsets, (std::vector<int64_t>{0, 3, 4}));
  EXPECT_EQ(layout.max_length, 3);
  EXPECT_TRUE(torch::equal(layout.index, torch::tensor({1, 2, 3, 7}, torch::kLong)));
  EXPECT_TRUE(torch::equal(layout.positions, torch::tensor({0, 1, 2, 0}, torch::kLong).view({1, 4})));
  auto x = torch::arange(8, torch::kFloat32).view({2, 4, 1});
  auto packed = pack(x, layout);  // (1, 4, 1)
  EXPECT_TRUE(torch::equal(packed.view({-1}), torch::tensor({1.f, 2.f, 3.f, 7.f})));
  EXPECT_TRUE(torch::equal(unpack(packed, layout, 2, 4).view({-1}),
                           torch::tensor({0.f, 1.f, 2.f, 3.f, 0.f, 0.f, 0.f, 7.f})));
}

TEST(PackLayout, AMaskWithAHoleIsRefused) {
  auto mask = torch::tensor({1, 0, 1}, torch::kLong).view({1, 3});
  EXPECT_THROW(pack_layout(mask, {}, torch::kCPU), c10::Error);
}

}  // namespace
}  // namespace bireco::model
