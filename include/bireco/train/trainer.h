// The training loop shared by every stage: micro-batches and gradient accumulation, AdamW and
// the LR schedule, clipping, precision, logging, metrics.jsonl, checkpoints and resume.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
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
#include "bireco/train/precision.h"

namespace bireco::distributed {
class Group;
class GradientSync;
class ShardedOptimizer;
}  // namespace bireco::distributed
namespace bireco::util {
class MetricsWriter;
}  // namespace bireco::util

namespace bireco::train {

class Evaluator;  // train/evaluation.h

// What one optimizer step reports.
struct StepResult {
  int64_t step = 0;  // optimizer steps taken after this one
  double lr = 0;
  double grad_norm = 0;
  int64_t tokens = 0;
  double seconds = 0;
  std::map<std::string, double> metrics;  // the objective's (loss, loss_d2q, accuracy, ...)
  // The loss (summed over the ranks) or the gradient norm was not finite: the optimizer did
  // not step and the weights are unchanged (see Trainer::train_step).
  bool skipped = false;
};

class Trainer {
 public:
  // Seeds torch, loads tokenizer, model (model::load), datasets, sampler, objective, AdamW.
  // Under torchrun / SLURM / `bireco launch` (WORLD_SIZE > 1) it joins the process group:
  // rank 0's weights are broadcast, each rank reads its slice of every global batch, and
  // gradients are averaged (distributed::GradientSync); one process never touches c10d.
  explicit Trainer(config::StageConfig config);
  ~Trainer();

  // Continues from a checkpoint folder: weights, optimizer, step, sampler, RNG. Strict: when
  // this run's config or data differ from the checkpoint's (train/resume_check.h) it is a
  // bireco::Error naming each difference, unless `accept_changed` (`--resume-changed`), which
  // logs each as a warning instead.
  void resume_from(const std::filesystem::path& dir, bool accept_changed = false);

  // Scores the model every eval.every steps and at the end (train/evaluation.h; needed when
  // the config lists eval tasks).
  void set_evaluator(std::unique_ptr<Evaluator> evaluator);

  // Steps until total_steps(): progress line, metrics.jsonl every train.log_every steps,
  // step-<N>/ every checkpoint.every steps (newest checkpoint.keep kept), final/ at the end.
  // Returns true when finished. After a stop signal (train/stop_signal.h) every rank ends
  // the same step, step-<N>/ is saved, and it returns false without writing final/.
  bool train();

  // One optimizer step over `micro_batches` (their gradients accumulated, the loss averaged
  // over all of them as if they were one batch).
  //
  // Numerical guard: when the loss (summed over the ranks) or the gradient norm (of the
  // gradients all ranks share after the all-reduce) is not finite, every rank skips the
  // optimizer step alike: gradients zeroed, weights and AdamW state untouched, a warning
  // logged, StepResult::skipped set. The step still counts: the batch is consumed and step()
  // and the LR schedule move on, so max_steps, checkpoints and resume stay what they would
  // be (a resumed run replays the same batches and skips the same steps, bit for bit). More
  // than train.max_skipped_steps skips in a row (0: no limit; the count is saved in
  // checkpoints, so resuming does not reset it) are a bireco::Error naming the last complete
  // checkpoint.
  StepResult train_step(const std::vector<data::Batch>& micro_batches);

  // The next train.grad_accum micro-batches from the sampler.
  std::vector<data::Batch> next_micro_batches();
  // Records -> one batch, as the configured stage needs it.
  data::Batch collate(const std::vector<data::PairRecord>& records) const;

  // `extra_files` (optional) writes more files into the folder before its manifest.
  void save_checkpoint(const std::filesystem::path& dir,
                       const std::function<void(const std::filesystem::path&)>& extra_files = {});

  model::Transformer& model() { return model_; }
  objective::Objective& objective() { return *objective_; }
  const data::Dataset& dataset(size_t i) const { return *datasets_.at(i); }
  int64_t step() const { return step_; }
  int64_t total_steps() const;
  const std::string& precision() const { return precision_.precision; }

 private:
  config::StageConfig config_;
  PrecisionPlan precision_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::unique_ptr<text::EmbeddingTemplate> template_;
  std::unique_ptr<data::Collator> collator_;
  int32_t pad_id_ = 0;
  std::vector<std::unique_ptr<data::Dataset>> datasets_;
  std::unique_ptr<data::BatchSampler> sampler_;
  model::Transformer model_{nullptr};
  std::unique_ptr<objective::Objective> objective_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;  // null when sharded_ takes its place
  // dist.shard optimizer | gradients on more than one rank: AdamW state and gradients sharded
  // over the ranks (distributed/sharded_optimizer.h), instead of optimizer_ and sync_.
  std::unique_ptr<distributed::ShardedOptimizer> sharded_;
  std::vector<torch::Tensor> parameters_;  // those that require grad
  std::unique_ptr<distributed::Group> group_;      // null for one process
  std::unique_ptr<distributed::GradientSync> sync_;
  nlohmann::json data_files_;  // data_fingerprint(config_.data), taken at construction
  int64_t step_ = 0;
  int64_t consecutive_skips_ = 0;
  // After a step: the stop signal every rank agreed on (train/stop_signal.h): 0 none, the
  // signal this process received, or -1 when only another rank received one.
  int stop_signal_ = 0;
  // While train() reads the next step's data on another thread (see there), the sampler is
  // ahead of the weights: checkpoints record where it stood after the last trained step.
  std::optional<data::SamplerPosition> trained_position_;
  std::unique_ptr<Evaluator> evaluator_;  // null: no evaluation
  std::optional<double> best_score_;      // of best/, eval.metric_for_best

  // Sums every value over the ranks (identity for one process): the step's token counts and
  // logged metrics then describe the global batch, as one process with it would see them.
  // `stop_signal` (in: this process's, out: the agreed one, as stop_signal_) travels in the
  // same collective.
  void sum_over_ranks(objective::Sums& sums, int64_t* tokens = nullptr, int* stop_signal = nullptr) const;
  // The guard of train_step: throws after too many non-finite steps in a row.
  void count_skip(const std::string& what, double value);
  // Evaluation during training (defined in evaluation.cpp).
  bool evaluation_due(int64_t total) const;
  void restore_best();
  void evaluate(util::MetricsWriter& metrics);
};

}  // namespace bireco::train
