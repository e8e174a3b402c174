// Plain next-token prediction over Batch::positives, for pre-training small models (the
// demo's `stage: lm`); shares the chunked loss with stage I.
#pragma once

#include "bireco/objective/chunked_loss.h"
#include "bireco/objective/objective.h"

namespace bireco::objective {

// labels[b, t] = ids[b, t + 1] where both positions are real tokens, kIgnoreLabel elsewhere
// (works for left and right padding: a row's real tokens are contiguous).
torch::Tensor next_token_labels(const data::TextBlock& block);

class CausalLm : public Objective {
 public:
  CausalLm(int64_t chunk_tokens, HeadGradient head_gradient)
      : chunk_tokens_(chunk_tokens), head_gradient_(head_gradient) {}
  Sums count(const data::Batch& batch) const override;  // targets
  ObjectiveOutput compute(model::Transformer& model, const data::Batch& batch, int64_t step,
                          const Sums& totals) override;
  std::map<std::string, double> finish(const Sums& sums) const override;

 private:
  int64_t chunk_tokens_;
  HeadGradient head_gradient_;
};

}  // namespace bireco::objective
