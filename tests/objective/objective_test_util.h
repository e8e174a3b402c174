// Helpers shared by the objective suites: a tiny random Llama and padded blocks of texts of
// given lengths (BOS, random ids, EOS), as the collator pads them.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "../model/model_test_util.h"
#include "bireco/data/collator.h"

namespace bireco::objective::test_util {

inline model::Transformer tiny_model(int64_t vocab = 48, bool tied = false) {
  model::Transformer m(model::test_util::tiny_llama_config(vocab, tied));
  model::init_random(m, 7);
  return m;
}

inline data::TextBlock random_block(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed,
                                    int64_t prefix_length = 0,
                                    data::PaddingSide side = data::PaddingSide::kLeft) {
  torch::manual_seed(seed);
  std::vector<text::EncodedText> texts;
  for (int64_t n : lengths) {
    text::EncodedText t;
    t.ids.push_back(1);
    auto body = torch::randint(3, vocab, {n - 2}, torch::kLong);
    for (int64_t i = 0; i < n - 2; ++i) t.ids.push_back(static_cast<int32_t>(body[i].item<int64_t>()));
    t.ids.push_back(2);
    t.prefix_length = prefix_length;
    texts.push_back(t);
  }
  return data::pad_block(texts, 2, side);
}

}  // namespace bireco::objective::test_util
