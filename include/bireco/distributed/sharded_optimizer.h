// AdamW with its state sharded over the data-parallel ranks (ZeRO-1 and ZeRO-2, as llm.c's
// zero.cuh does it), on c10d's reduce-scatter and all-gather; the optimizer the trainer uses
// when dist.shard is not `none` and there is more than one rank.
//
// The trainer's use, per optimizer step:
//   ShardedOptimizer opt(group, trainable, options);   // once; after broadcast_parameters
//   opt.zero_grad();
//   for each micro-step m of grad_accum:
//     opt.begin_micro_step(m == last);
//     loss.backward();                   // buckets reduce-scatter while backward runs
//     opt.end_micro_step(m == last);
//   grad_norm = opt.clip_grad_norm(max_norm);   // the norm over every rank's shard
//   opt.step(lr);                        // this rank's shard, then all-gather the weights
//
// Layout: the trainable parameters are grouped into GradientSync's buckets (reverse order,
// about dist.bucket_mb each), every bucket padded to a multiple of the world size and cut into
// `world` equal pieces; rank r owns piece r of every bucket: the master weights, AdamW's two
// moments and the gradient of those elements, in the master dtype (precision.h's trainable
// dtype: float32 under bf16-mixed and fp32). The parameters themselves are the compute copy
// every rank holds whole: bfloat16 under bf16-mixed, else the master dtype.
//
//   shard optimizer (ZeRO-1): gradients accumulate whole in .grad over the micro-steps; the
//     last one reduce-scatters them into this rank's shard.
//   shard gradients (ZeRO-2): every micro-step reduce-scatters, adding into the shard, so no
//     whole gradient outlives its backward (what ZeRO-2 costs: one reduce-scatter per
//     micro-step instead of per step).
//
// Checkpoints stay as without sharding (train/checkpoint.h): state_tensors() gathers the full
// per-parameter state, with_master_weights() lends the parameters the full master weights
// while the Hugging Face files are written, and load_state() takes any rank's slice of it, so a
// run resumes on another world size, or unsharded.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bireco/distributed/gradient_sync.h"
#include "bireco/distributed/group.h"
#include "bireco/model/safetensors.h"

namespace bireco::distributed {

// dist.shard: none | optimizer | gradients; anything else is an Error naming the key.
enum class ShardMode { kNone, kOptimizer, kGradients };
ShardMode parse_shard_mode(const std::string& shard);

struct ShardedParameter {
  std::string name;  // as in the model (the checkpoint's optimizer state is keyed by it)
  torch::Tensor tensor;
  bool decay = true;  // AdamW's weight decay applies (train::no_weight_decay)
};

struct ShardedAdamWOptions {
  ShardMode mode = ShardMode::kOptimizer;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  double bucket_mb = 25;
  torch::ScalarType master = torch::kFloat32;   // master weights, moments, gradient shard
  torch::ScalarType compute = torch::kFloat32;  // the parameters every rank holds
};

class ShardedOptimizer {
 public:
  // `parameters` (the trainable ones, the same on every rank, in the master dtype) become the
  // master weights; then they are cast to options.compute in place.
  ShardedOptimizer(Group& group, std::vector<ShardedParameter> parameters,
                   const ShardedAdamWOptions& options);
  ~ShardedOptimizer();
  ShardedOptimizer(const ShardedOptimizer&) = delete;
  ShardedOptimizer& operator=(const ShardedOptimizer&) = delete;

  // Drops every gradient: the shard's and whatever .grad holds.
  void zero_grad();
  // Around each micro-step's backward passes (all of them: GradCache's chunks and gradient
  // checkpointing's recomputations count as one micro-step).
  void begin_micro_step(bool last);
  void end_micro_step(bool last);

  // The 2-norm of the whole summed gradient (every rank's shard), the same on every rank; when
  // max_norm > 0 the shard is scaled by min(1, max_norm / (norm + 1e-6)) as
  // torch::nn::utils::clip_grad_norm_ does.
  double clip_grad_norm(double max_norm);

  // AdamW (torch::optim::AdamW's arithmetic) on this rank's shard, then every rank's updated
  // piece all-gathered into the parameters.
  void step(double lr);

  // Collective (every rank calls it). The full state under train::optimizer_state_tensors'
  // names, "<name>.exp_avg", "<name>.exp_avg_sq" (master dtype), "<name>.step" (int64 [1]),
  // on the CPU of rank 0; the other ranks get an empty list. Nothing before the first step.
  model::NamedTensors state_tensors();
  // Takes this rank's slice of a full state (as state_tensors writes it, or an unsharded run);
  // a missing or mis-shaped tensor is an Error naming it and `source`.
  void load_state(const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

  // Collective. Runs `use` while the parameters hold the full master weights (rank 0: on the
  // CPU; the other ranks take part in the gathering only), then gives them the compute copy
  // back. When master and compute dtype agree, the parameters are the master weights already
  // and `use` simply runs.
  void with_master_weights(const std::function<void()>& use);
  // Runs `load` with the parameters in the master dtype, takes the master shard from what it
  // loaded into them, then casts them back (a resume's weights lose nothing to the compute
  // copy's rounding).
  void reload_master_weights(const std::function<void()>& load);

  int64_t shard_numel() const;  // the elements of the master shard on this rank
  int64_t steps() const;        // optimizer steps taken (AdamW's step count)

  struct State;  // layout, shards, the gradient sync (src/distributed/sharded_optimizer.cpp)

 private:
  std::unique_ptr<State> state_;
};

}  // namespace bireco::distributed
