#include "bireco/objective/causal_lm.h"

namespace bireco::objective {

torch::Tensor next_token_labels(const data::TextBlock& block) {
  const auto& ids = block.input_ids;
  auto real = block.attention_mask != 0;
  auto both = real.slice(1, 0, -1) & real.slice(1, 1);  // (B, T-1): t and t+1 real
  auto labels = torch::where(both, ids.slice(1, 1), torch::full_like(ids.slice(1, 1), kIgnoreLabel));
  return torch::cat({labels, torch::full({ids.size(0), 1}, kIgnoreLabel, ids.options())}, 1);  // (B, T)
}

Sums CausalLm::count(const data::Batch& batch) const {
  return {{"targets", static_cast<double>((next_token_labels(batch.positives) != kIgnoreLabel).sum().item<int64_t>())}};
}

ObjectiveOutput CausalLm::compute(model::Transformer& model, const data::Batch& batch, int64_t step,
                                  const Sums& totals) {
  const auto device = model->embed->weight.device();
  const auto& block = batch.positives;
  // The mask stays on the host: the pass lays itself out from it (transformer.h).
  auto hidden = model->forward(model::to_device_async(block.input_ids, device), block.attention_mask).last_hidden_state;
  auto part = chunked_token_loss(hidden, head_weight(model), next_token_labels(block), chunk_tokens_,
                                 head_gradient_);
  ObjectiveOutput out;
  out.loss = part.sum / std::max(1.0, totals.at("targets"));
  out.metrics = {{"lm_tokens", static_cast<double>(part.tokens)}};
  out.device_metrics = {{"loss", out.loss.detach()}, {"lm_correct", part.correct}};
  out.tokens = block.attention_mask.sum().item<int64_t>();
  return out;
}

std::map<std::string, double> CausalLm::finish(const Sums& sums) const {
  auto m = sums;
  m["accuracy"] = sums.at("lm_tokens") > 0 ? sums.at("lm_correct") / sums.at("lm_tokens") : 0.0;
  m.erase("lm_correct");
  return m;
}

}  // namespace bireco::objective
