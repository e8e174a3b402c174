// AdamW with two parameter groups (no weight decay on norms and biases) and its state as
// named tensors, so checkpoints store it as safetensors rather than a pickle.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "bireco/config/stage_config.h"
#include "bireco/distributed/sharded_optimizer.h"
#include "bireco/model/safetensors.h"
#include "bireco/model/transformer.h"

namespace bireco::train {

// Whether a parameter is exempt from weight decay: biases and every norm weight (as
// transformers' Trainer groups them).
bool no_weight_decay(const std::string& name);

// Group 0: decayed parameters, group 1: the rest; only parameters that require grad.
// optim.name other than adamw is a bireco::Error.
std::unique_ptr<torch::optim::AdamW> make_adamw(model::Transformer& model, const config::OptimConfig& optim);

void set_lr(torch::optim::Optimizer& optimizer, double lr);

// The sharded AdamW (dist.shard optimizer | gradients) over the model's trainable parameters,
// with optim's hyper-parameters and make_adamw's weight-decay groups; they become its master
// weights (in `master`, their dtype now) and are cast to `compute`.
std::unique_ptr<distributed::ShardedOptimizer> make_sharded_adamw(distributed::Group& group,
                                                                  model::Transformer& model,
                                                                  const config::StageConfig& config,
                                                                  torch::ScalarType master,
                                                                  torch::ScalarType compute);

// "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.step" (int64 [1]) for every parameter the
// optimizer has state for.
model::NamedTensors optimizer_state_tensors(torch::optim::AdamW& optimizer, model::Transformer& model);

// The inverse; a missing or mis-shaped tensor is a bireco::Error naming it and `source`.
void load_optimizer_state(torch::optim::AdamW& optimizer, model::Transformer& model,
                          const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

}  // namespace bireco::train
