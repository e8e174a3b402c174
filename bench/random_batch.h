// Random token blocks for the objective benchmarks (kept out of bench_common.h, which
// bench_tokenize includes without LibTorch).
#pragma once

#include <torch/torch.h>

#include "bireco/data/batch.h"

namespace bireco::bench {

// rows x length random ids in [3, vocab) ending in EOS (id 2, the pooled token); with `bos`
// the first id is BOS (1), as the tokenizers the stage-I configs use put it.
inline data::TextBlock random_block(int64_t rows, int64_t length, int64_t vocab, bool bos) {
  data::TextBlock b;
  b.input_ids = torch::randint(3, vocab, {rows, length}, torch::kLong);
  if (bos) b.input_ids.select(1, 0).fill_(1);
  b.input_ids.select(1, length - 1).fill_(2);
  b.attention_mask = torch::ones({rows, length}, torch::kLong);
  return b;
}

}  // namespace bireco::bench
