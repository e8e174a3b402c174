// Stage II: InfoNCE over the similarities of each query with every positive and hard-negative
// document of the micro-batch (gathered from all ranks), as the authors train (PAPER.md,
// "Stage II"); optionally with GradCache so that a batch of thousands of texts fits.
#pragma once

#include "bireco/objective/objective.h"

namespace bireco::distributed {
class Group;
}

namespace bireco::objective {

struct ContrastiveOptions {
  double scale = 50;            // 1 / temperature (the authors: 50, i.e. tau = 0.02)
  bool cosine = true;           // false: dot product (still multiplied by `scale`)
  int64_t hard_negatives = 1;   // per query: the first k of the batch's negatives
  bool gather_across_ranks = true;
  bool symmetric = false;       // add the document -> query term and average the two
  int64_t gradcache_chunk = 0;  // > 0: GradCache, re-encoding this many texts at a time
  // GradCache's pass with gradients: checkpointed as the model says (true), or keeping the
  // chunk's activations (false: one forward fewer per chunk, memory of one chunk).
  bool gradcache_recompute = true;
  std::string pooling = "last";
};

ContrastiveOptions contrastive_options(const config::StageConfig& config);

// scores[i, j] = scale * sim(a_i, b_j): a [B, C], b [N, C] -> [B, N], computed in float32.
torch::Tensor similarity_scores(const torch::Tensor& a, const torch::Tensor& b, const ContrastiveOptions& options);

struct InfoNce {
  torch::Tensor sum;    // summed cross-entropy over this rank's queries (averaged with the
                        // document -> query term when symmetric)
  torch::Tensor correct;  // int64 scalar on the device: queries whose own positive scored highest
};

// InfoNCE on embeddings: this rank's queries q [B, C] against the positives p [B, C] and hard
// negatives n [B*k, C] (may be undefined) of every rank when `group` has several ranks and
// options.gather_across_ranks (gradients flow back to their owners through the gather), else
// of this rank alone. Query i's target is its own positive. With group == nullptr or one rank
// no collective is touched.
InfoNce info_nce(const torch::Tensor& q, const torch::Tensor& p, const torch::Tensor& n,
                 const ContrastiveOptions& options, distributed::Group* group);

class Contrastive : public Objective {
 public:
  explicit Contrastive(ContrastiveOptions options, distributed::Group* group = nullptr)
      : options_(std::move(options)), group_(group) {}

  // queries: the micro-batch's queries (what the loss averages over).
  Sums count(const data::Batch& batch) const override;
  // loss = summed InfoNCE / queries of the whole step, so accumulated micro-batches average
  // (each micro-batch keeps its own negatives, as in the authors' code). With GradCache the
  // backward has already run: ObjectiveOutput::backward_done.
  ObjectiveOutput compute(model::Transformer& model, const data::Batch& batch, int64_t step,
                          const Sums& totals) override;
  std::map<std::string, double> finish(const Sums& sums) const override;

  // The hard negatives the loss uses: rows i*k + j (j < options.hard_negatives) of the
  // batch's negatives block; an undefined block when none are used.
  data::TextBlock used_negatives(const data::Batch& batch) const;

 private:
  ObjectiveOutput compute_plain(model::Transformer& model, const data::Batch& batch, double total);
  ObjectiveOutput compute_gradcache(model::Transformer& model, const data::Batch& batch, double total);

  ContrastiveOptions options_;
  distributed::Group* group_;
};

}  // namespace bireco::objective
