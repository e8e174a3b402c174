// The interface every training objective offers the trainer: reconstruction (stage I),
// causal LM (pre-training small models) and contrastive (stage II).
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "bireco/config/stage_config.h"
#include "bireco/data/batch.h"
#include "bireco/model/transformer.h"

namespace bireco::distributed {
class Group;
}

namespace bireco::objective {

// Named quantities that add up over the micro-batches of one optimizer step.
using Sums = std::map<std::string, double>;

// Named scalar tensors (on the model's device) that add up like Sums: read once per optimizer
// step instead of once per micro-step, so that a step waits for the device only where the
// optimizer needs a value (the loss and gradient norm).
using TensorSums = std::map<std::string, torch::Tensor>;

struct ObjectiveOutput {
  torch::Tensor loss;  // scalar to backward: this micro-batch's share of the step's loss
  Sums metrics;        // known on the host (counts); summed over micro-batches, then
                       // Objective::finish turns them into logs
  TensorSums device_metrics;  // computed on the device (loss parts, correct predictions); the same
  int64_t tokens = 0;  // input tokens processed (for tokens/s)
  // compute() has already back-propagated `loss` into the parameters' gradients (GradCache
  // must, chunk by chunk); the trainer then only logs it and must not call backward again.
  bool backward_done = false;

  // metrics and device_metrics in one map (one device synchronisation).
  Sums read_metrics() const;
};

// Adds `more` into `sums` (each name's tensors summed where they live).
void add_device_metrics(TensorSums& sums, const TensorSums& more);
// Adds the values of `sums` into `into`, read from the device in one copy.
void read_device_metrics(const TensorSums& sums, Sums& into);

class Objective {
 public:
  virtual ~Objective() = default;

  // What the loss averages over (e.g. target tokens per direction), counted from the batch
  // before any forward pass. The trainer adds the counts of all micro-batches of a step and
  // hands the totals to compute(), so k accumulated micro-batches give the loss of one batch
  // k times larger.
  virtual Sums count(const data::Batch& batch) const = 0;

  // `step`: the optimizer step (0-based) this micro-batch belongs to.
  virtual ObjectiveOutput compute(model::Transformer& model, const data::Batch& batch, int64_t step,
                                  const Sums& totals) = 0;

  // Summed metrics of a step -> what is logged (e.g. correct / tokens -> accuracy).
  virtual std::map<std::string, double> finish(const Sums& sums) const { return sums; }
};

// The objective of `config.stage`: reconstruction | contrastive | lm. `eos_id`: the tokenizer's
// EOS (reconstruction ignores labels equal to it unless predict_eos). `group`: the data-parallel
// group contrastive gathers its negatives over (nullptr: one process).
std::unique_ptr<Objective> make_objective(const config::StageConfig& config, int64_t eos_id,
                                          distributed::Group* group = nullptr);

}  // namespace bireco::objective
