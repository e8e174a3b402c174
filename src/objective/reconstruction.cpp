#include "bireco/objective/reconstruction.h"

#include "bireco/model/pooling.h"
#include "bireco/util/error.h"

namespace bireco::objective {
namespace {

// Which ids of a block are reconstruction targets: real tokens, minus EOS unless predict_eos.
torch::Tensor target_mask(const torch::Tensor& ids, const torch::Tensor& mask,
                          const ReconstructionOptions& options) {
  auto target = mask != 0;
  if (!options.predict_eos) target = target & (ids != options.eos_id);
  return target;
}

// Positions 0..T-1 on every row, counted over padding (the authors' code, reference_quirks).
torch::Tensor arange_positions(int64_t rows, int64_t length, torch::Device device) {
  return torch::arange(length, torch::TensorOptions().dtype(torch::kLong).device(device))
      .unsqueeze(0)
      .expand({rows, length});
}

}  // namespace

ReconstructionOptions reconstruction_options(const config::StageConfig& config, int64_t eos_id) {
  const auto& r = config.objective.reconstruction;
  ReconstructionOptions o;
  o.d2q_weight = r.d2q_weight;
  o.q2d_weight = r.q2d_weight;
  if (r.mode != "sum" && r.mode != "alternate")
    throw Error("objective.reconstruction.mode: '" + r.mode + "' is not one of sum, alternate");
  o.alternate = r.mode == "alternate";
  o.predict_eos = r.predict_eos;
  o.reference_quirks = r.reference_quirks;
  o.eos_id = eos_id;
  o.chunk_tokens = config.objective.loss_chunk_tokens;
  o.head_gradient = head_gradient_from_name(config.objective.loss_head_gradient);
  o.pooling = config.model.pooling;
  return o;
}

ReconstructionInputs reconstruction_inputs(model::Transformer& model, const torch::Tensor& prefix,
                                           const data::TextBlock& target,
                                           const ReconstructionOptions& options) {
  const auto device = prefix.device();
  // The layout is worked out on the host, where the collator's block lives: masks, positions
  // and labels then reach the pass (and the chunked loss) with no device synchronisation.
  auto ids = target.input_ids.to(torch::kCPU);        // (B, T)
  auto mask = target.attention_mask.to(torch::kCPU);  // (B, T)
  const int64_t rows = ids.size(0), length = ids.size(1);
  TORCH_CHECK(prefix.dim() == 2 && prefix.size(0) == rows,
              "reconstruction: prefix [B, C] and target rows disagree: ", prefix.sizes(), " vs ", ids.sizes());
  auto column = torch::arange(length, ids.options()).unsqueeze(0);  // (1, T)
  auto first_real = (mask.cumsum(1) == 0).sum(1, /*keepdim=*/true);  // (B, 1) leading padding
  auto ignore_column = torch::full({rows, 1}, kIgnoreLabel, ids.options());
  auto prefix_slot = prefix.unsqueeze(1).to(model->embed->weight.scalar_type());  // (B, 1, C)
  auto token_embeds = [&](const torch::Tensor& host_ids) {
    return model->embed_tokens(model::to_device_async(host_ids, device));
  };

  ReconstructionInputs in;
  if (options.reference_quirks) {
    // The block as it is (left padded) after the prefix; positions 0..T over the padding;
    // BOS, template header and instruction hidden as keys but still predicted.
    auto hidden_prefix = target.prefix_length.defined()
                             ? target.prefix_length.to(torch::kCPU).unsqueeze(1)
                             : torch::zeros({rows, 1}, ids.options());
    auto visible = (mask != 0) & (column - first_real >= hidden_prefix);
    in.embeds = torch::cat({prefix_slot, token_embeds(ids)}, 1);
    in.attention_mask = torch::cat({torch::ones({rows, 1}, ids.options()), visible.to(torch::kLong)}, 1);
    in.position_ids = arange_positions(rows, length + 1, torch::kCPU);
    in.mask_is_padding = false;  // the hidden prefix tokens are still queried and predicted
    auto labels = torch::where(target_mask(ids, mask, options), ids, torch::full_like(ids, kIgnoreLabel));
    in.labels = torch::cat({labels, ignore_column}, 1);
    return in;
  }
  // Pack each row's real tokens to the front: [prefix, tok_1 .. tok_n, padding].
  auto lengths = mask.sum(1, /*keepdim=*/true);                       // (B, 1)
  auto valid = column < lengths;                                      // (B, T)
  auto packed = ids.gather(1, (first_real + column).clamp_max(length - 1)).masked_fill(~valid, 0);
  auto packed_mask = valid.to(torch::kLong);
  in.embeds = torch::cat({prefix_slot, token_embeds(packed)}, 1);
  in.attention_mask = torch::cat({torch::ones({rows, 1}, ids.options()), packed_mask}, 1);
  // Position t (prefix = 0) predicts packed token t; the last position predicts nothing.
  auto labels = torch::where(target_mask(packed, packed_mask, options), packed,
                             torch::full_like(packed, kIgnoreLabel));
  in.labels = torch::cat({labels, ignore_column}, 1);
  return in;
}

TokenLoss reconstruction_loss(model::Transformer& model, const torch::Tensor& prefix,
                              const data::TextBlock& target, const ReconstructionOptions& options) {
  auto in = reconstruction_inputs(model, prefix, target, options);
  auto hidden = model->forward_embeds(in.embeds, in.attention_mask, false, in.position_ids, in.mask_is_padding)
                    .last_hidden_state;
  return chunked_token_loss(hidden, head_weight(model), in.labels, options.chunk_tokens,
                            options.head_gradient);
}

int64_t reconstruction_targets(const data::TextBlock& target, const ReconstructionOptions& options) {
  return target_mask(target.input_ids, target.attention_mask, options).sum().item<int64_t>();
}

torch::Tensor encode_block(model::Transformer& model, const data::TextBlock& block,
                           const ReconstructionOptions& options) {
  const auto device = model->embed->weight.device();
  // Ids go to the device; the mask (and reference_quirks' positions) stay on the host for the
  // pass to lay out (transformer.h, forward_embeds).
  auto ids = model::to_device_async(block.input_ids, device);
  const auto& mask = block.attention_mask;
  torch::Tensor positions;
  if (options.reference_quirks) positions = arange_positions(ids.size(0), ids.size(1), torch::kCPU);
  auto hidden = model->forward_embeds(model->embed_tokens(ids), mask, false, positions).last_hidden_state;
  return model::pool(hidden, mask, options.pooling);  // (B, C)
}

Sums Reconstruction::count(const data::Batch& batch) const {
  return {{"d2q_targets", static_cast<double>(reconstruction_targets(batch.queries, options_))},
          {"q2d_targets", static_cast<double>(reconstruction_targets(batch.positives, options_))},
          {"micro_batches", 1.0}};
}

ObjectiveOutput Reconstruction::compute(model::Transformer& model, const data::Batch& batch, int64_t step,
                                        const Sums& totals) {
  ObjectiveOutput out;
  out.loss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(model->embed->weight.device()));
  // Every name in every micro-step (alternate mode runs one direction), so that the sums line
  // up across micro-batches and ranks.
  const auto zero = torch::zeros({}, out.loss.options().dtype(torch::kFloat64));
  out.metrics = {{"d2q_tokens", 0.0}, {"q2d_tokens", 0.0}};
  out.device_metrics = {{"loss_d2q", zero}, {"loss_q2d", zero}, {"d2q_correct", zero}, {"q2d_correct", zero}};
  const Sums mine = count(batch);
  // One direction: `source` is embedded and prefixes the rebuilding of `target`. No detach:
  // the loss reaches the encoding pass through the prefix vector.
  auto direction = [&](const data::TextBlock& source, const data::TextBlock& target, const std::string& name,
                       double weight) {
    auto prefix = encode_block(model, source, options_);
    auto part = reconstruction_loss(model, prefix, target, options_);
    // How the step's loss is normalised. By default every target token of the global batch
    // (all micro-batches of all ranks; `totals` is summed over both by the trainer) weighs the
    // same: a direction's loss is its summed cross-entropy over the step's target count, as
    // transformers >= 4.46 does with num_items_in_batch. The authors' code (HF Trainer, DDP)
    // took each micro-batch's token mean and averaged those over micro-batches and ranks, so a
    // token of a short micro-batch weighed more: reference_quirks reproduces that.
    const double total = options_.reference_quirks ? std::max(1.0, mine.at(name + "_targets")) *
                                                         totals.at("micro_batches")
                                                   : std::max(1.0, totals.at(name + "_targets"));
    auto mean_share = part.sum / total;
    out.loss = out.loss + weight * mean_share;
    out.device_metrics["loss_" + name] = mean_share.detach();
    out.metrics[name + "_tokens"] = static_cast<double>(part.tokens);
    out.device_metrics[name + "_correct"] = part.correct;
  };
  if (runs_d2q(step)) direction(batch.positives, batch.queries, "d2q", options_.alternate ? 1.0 : options_.d2q_weight);
  if (runs_q2d(step)) direction(batch.queries, batch.positives, "q2d", options_.alternate ? 1.0 : options_.q2d_weight);
  out.device_metrics["loss"] = out.loss.detach();
  out.tokens = batch.queries.attention_mask.sum().item<int64_t>() + batch.positives.attention_mask.sum().item<int64_t>();
  return out;
}

std::map<std::string, double> Reconstruction::finish(const Sums& sums) const {
  auto m = sums;
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  m["accuracy_d2q"] = ratio(sums.at("d2q_correct"), sums.at("d2q_tokens"));
  m["accuracy_q2d"] = ratio(sums.at("q2d_correct"), sums.at("q2d_tokens"));
  m["accuracy"] = ratio(sums.at("d2q_correct") + sums.at("q2d_correct"), sums.at("d2q_tokens") + sums.at("q2d_tokens"));
  m["recon_tokens"] = sums.at("d2q_tokens") + sums.at("q2d_tokens");
  m.erase("d2q_correct");
  m.erase("q2d_correct");
  return m;
}

}  // namespace bireco::objective
