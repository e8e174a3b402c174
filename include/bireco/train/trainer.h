// The training loop shared by every stage: micro-batches and gradient accumulation, AdamW and
// the LR schedule, clipping, precision, logging, metrics.jsonl, checkpoints and resume.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bireco/config/stage_config.h"
#include "bireco/data/batch.h"
#include "bireco/data/collator.h"
#include "bireco/data/sampler.h"
#include "bireco/data/sources.h"
#include "bireco/model/transformer.h"
#include "bireco/objective/objective.h"
#include "bireco/text/embedding_template.h"
#include "bireco/text/tokenizer.h"

namespace bireco::dist {
class Group;
class GradientSync;
}  // namespace bireco::dist

namespace bireco::train {

// What one optimizer step reports.
struct StepResult {
  int64_t step = 0;  // optimizer steps taken after this one
  double lr = 0;
  double grad_norm = 0;
  int64_t tokens = 0;
  double seconds = 0;
  std::map<std::string, double> metrics;  // the objective's (loss, loss_d2q, accuracy, ...)
};

// `precision` (auto | fp32 | bf16 | bf16-mixed) on `device` -> fp32 | bf16 | bf16-mixed; auto
// is fp32 on CPU and bf16-mixed on CUDA. bf16: bf16 weights (and AdamW state); bf16-mixed:
// fp32 weights and optimizer state, the objective's forward under bf16 autocast.
std::string resolve_precision(const std::string& precision, const torch::Device& device);

class Trainer {
 public:
  // Seeds torch, loads tokenizer, model (model::load), datasets, sampler, objective, AdamW.
  // Under torchrun / SLURM / `bireco launch` (WORLD_SIZE > 1) it joins the process group:
  // rank 0's weights are broadcast, each rank reads its slice of every global batch, and
  // gradients are averaged (dist::GradientSync); one process never touches c10d.
  explicit Trainer(config::StageConfig config);
  ~Trainer();

  // Continues from a checkpoint folder: weights, optimizer, step, sampler, RNG.
  void resume_from(const std::filesystem::path& dir);

  // Steps until total_steps(): progress line, metrics.jsonl every train.log_every steps,
  // step-<N>/ every checkpoint.every steps (newest checkpoint.keep kept), final/ at the end.
  void train();

  // One optimizer step over `micro_batches` (their gradients accumulated, the loss averaged
  // over all of them as if they were one batch).
  StepResult train_step(const std::vector<data::Batch>& micro_batches);

  // The next train.grad_accum micro-batches from the sampler.
  std::vector<data::Batch> next_micro_batches();
  // Records -> one batch, as the configured stage needs it.
  data::Batch collate(const std::vector<data::PairRecord>& records) const;

  void save_checkpoint(const std::filesystem::path& dir);

  model::Transformer& model() { return model_; }
  objective::Objective& objective() { return *objective_; }
  const data::Dataset& dataset(size_t i) const { return *datasets_.at(i); }
  int64_t step() const { return step_; }
  int64_t total_steps() const;
  const std::string& precision() const { return precision_; }

 private:
  config::StageConfig config_;
  std::string precision_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::unique_ptr<text::EmbeddingTemplate> template_;
  std::unique_ptr<data::Collator> collator_;
  int32_t pad_id_ = 0;
  std::vector<std::unique_ptr<data::Dataset>> datasets_;
  std::unique_ptr<data::BatchSampler> sampler_;
  model::Transformer model_{nullptr};
  std::unique_ptr<objective::Objective> objective_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> parameters_;  // those that require grad
  std::unique_ptr<dist::Group> group_;      // null for one process
  std::unique_ptr<dist::GradientSync> sync_;
  int64_t step_ = 0;

  // Sums every value over the ranks (identity for one process): the step's token counts and
  // logged metrics then describe the global batch, as one process with it would see them.
  void sum_over_ranks(objective::Sums& sums, int64_t* tokens = nullptr) const;
};

}  // namespace bireco::train
