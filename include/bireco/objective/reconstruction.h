// Stage I: EBQ2D / EBD2Q bidirectional reconstruction (PAPER.md, "Stage I"). A text's
// embedding sits at position 0 and the model reconstructs the other text of the pair after
// it by teacher forcing; gradients flow through that prefix vector into the encoding pass.
#pragma once

#include "bireco/objective/chunked_loss.h"
#include "bireco/objective/objective.h"

namespace bireco::objective {

struct ReconstructionOptions {
  double d2q_weight = 0.8;
  double q2d_weight = 0.2;
  bool alternate = false;  // `mode: alternate`: d2q on even optimizer steps, q2d on odd ones
  bool predict_eos = false;
  bool reference_quirks = false;
  int64_t eos_id = -1;
  int64_t chunk_tokens = 4096;
  HeadGradient head_gradient = HeadGradient::kFused;
  std::string pooling = "last";
};

// The reconstruction pass's inputs for prefix vectors [B, C] and the texts to rebuild.
struct ReconstructionInputs {
  torch::Tensor embeds;          // (B, 1 + T, C): prefix, then the text's token embeddings
  torch::Tensor attention_mask;  // (B, 1 + T)
  torch::Tensor position_ids;    // (B, 1 + T) under reference_quirks; undefined otherwise
  torch::Tensor labels;          // (B, 1 + T): what each position predicts, kIgnoreLabel if nothing
  bool mask_is_padding = true;   // false under reference_quirks (the mask also hides real tokens)
  // embeds are on the model's device; attention_mask, position_ids and labels on the host.
};

// Default layout: each row packed as [prefix, tok_1 .. tok_n, padding] whatever the block's
// padding side, positions 0..n from the mask; position 0 predicts tok_1, position i tok_{i+1}.
// Targets: every real token (BOS, template, instruction, text) except ids equal to eos_id
// unless predict_eos. reference_quirks: the block's own (left-padded) layout after the prefix,
// positions 0..T counted over padding, and each row's first prefix_length tokens hidden from
// attention while still predicted (the authors' code).
ReconstructionInputs reconstruction_inputs(model::Transformer& model, const torch::Tensor& prefix,
                                           const data::TextBlock& target,
                                           const ReconstructionOptions& options);

// Summed token cross-entropy of rebuilding `target` from `prefix`, through the chunked loss.
TokenLoss reconstruction_loss(model::Transformer& model, const torch::Tensor& prefix,
                              const data::TextBlock& target, const ReconstructionOptions& options);

// Number of target tokens reconstruction_loss() averages over (from ids and mask alone).
int64_t reconstruction_targets(const data::TextBlock& target, const ReconstructionOptions& options);

// Embeddings [B, C] of a block: final-norm state pooled (last real token by default).
torch::Tensor encode_block(model::Transformer& model, const data::TextBlock& block,
                           const ReconstructionOptions& options);

class Reconstruction : public Objective {
 public:
  explicit Reconstruction(ReconstructionOptions options) : options_(std::move(options)) {}

  // d2q_targets / q2d_targets: tokens each direction predicts; micro_batches: 1.
  Sums count(const data::Batch& batch) const override;
  // loss = d2q_weight * L_D2Q + q2d_weight * L_Q2D (token means over the whole step; under
  // reference_quirks, each micro-batch's token mean averaged over the step's micro-batches); in
  // alternate mode only the step's direction runs, with weight 1.
  ObjectiveOutput compute(model::Transformer& model, const data::Batch& batch, int64_t step,
                          const Sums& totals) override;
  std::map<std::string, double> finish(const Sums& sums) const override;

  // Which directions run at optimizer step `step`.
  bool runs_d2q(int64_t step) const { return !options_.alternate || step % 2 == 0; }
  bool runs_q2d(int64_t step) const { return !options_.alternate || step % 2 == 1; }

 private:
  ReconstructionOptions options_;
};

ReconstructionOptions reconstruction_options(const config::StageConfig& config, int64_t eos_id);

}  // namespace bireco::objective
