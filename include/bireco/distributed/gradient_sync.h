// Data-parallel gradient averaging that overlaps communication with the backward pass.
//
// The trainer's use, per optimizer step:
//   distributed::GradientSync sync(group, parameters, config.dist.bucket_mb);  // once; after
//                                                                        // broadcast_parameters
//   for each micro-step m of grad_accum:
//     sync.set_enabled(m == grad_accum - 1);   // no_sync on accumulation micro-steps
//     loss.backward();                         // buckets all-reduce while backward runs
//   sync.finish();                             // wait, copy averaged gradients into .grad
//   optimizer.step();
// Several backward passes in one micro-step (GradCache's chunks, gradient checkpointing's
// recomputations) need nothing more: each parameter is reduced after its last contribution.
// Checkpoint writing and logging stay on rank 0 (distributed::is_main).
//
// Sharded (ZeRO, distributed/sharded_optimizer.h): constructed with a `scatter_dtype`, the
// buckets are reduce-scattered instead: each bucket is padded to a multiple of the world size
// and split into `world` equal pieces, rank r receiving the sum of piece r, which finish() adds
// into shard_gradient(); a parameter's .grad is released as soon as it is copied into its
// bucket, and a bucket's buffer once its piece has arrived.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "bireco/distributed/group.h"

namespace bireco::distributed {

class GradientSync {
 public:
  // Only `parameters` with requires_grad are synchronised (LoRA: the adapters). Buckets of
  // about `bucket_mb` MiB (0: one bucket per parameter). Every rank passes the same
  // parameters in the same order.
  GradientSync(Group& group, const std::vector<torch::Tensor>& parameters, double bucket_mb);
  // Reduce-scatter (see above): shard_gradient() accumulates this rank's pieces in
  // `scatter_dtype`.
  GradientSync(Group& group, const std::vector<torch::Tensor>& parameters, double bucket_mb,
               torch::ScalarType scatter_dtype);
  ~GradientSync();  // removes its hooks
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Hooks the parameters' current gradient accumulators again: Tensor::set_data to another
  // dtype or device gives a parameter a new one, without the hook (the sharded optimizer's
  // casts between master and compute dtype).
  void reattach();

  // false: backward passes only accumulate locally, with no communication (no_sync).
  void set_enabled(bool enabled);
  bool enabled() const;

  // Launches the buckets backward did not complete (parameters without a gradient this step
  // count as zero), waits for all of them and writes the averages into each .grad. A no-op
  // when no backward ran with synchronisation enabled since the last finish().
  void finish();

  size_t bucket_count() const;
  int64_t buckets_launched() const;  // all-reduces started since construction

  // The buckets: which parameters (indices into the synchronised ones, those with
  // requires_grad in the order given) at which element offsets, and the bucket's length
  // (padded to a multiple of the world size when reduce-scattering).
  struct BucketLayout {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    int64_t numel = 0;
  };
  std::vector<BucketLayout> layout() const;
  // Reduce-scatter only: this rank's piece of every bucket, bucket after bucket (length: the
  // sum of numel / world), summed over the ranks and over the finish() calls since zeroed.
  torch::Tensor& shard_gradient();

  struct State;  // buckets and per-step bookkeeping (src/distributed/gradient_sync.cpp)

 private:
  GradientSync(Group& group, const std::vector<torch::Tensor>& parameters, double bucket_mb,
               std::optional<torch::ScalarType> scatter_dtype);
  std::unique_ptr<State> state_;
};

// The slow, obvious reference: after backward, all-reduce every gradient one by one and
// divide by the world size (undefined gradients count as zero).
void sync_gradients_reference(Group& group, const std::vector<torch::Tensor>& parameters);

}  // namespace bireco::distributed
