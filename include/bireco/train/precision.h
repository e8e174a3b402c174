// train.precision and model.dtype resolved into what each kind of weight is stored in, what
// the optimizer updates and whether the passes run under bf16 autocast, as the Python stack
// does it (HF Trainer + PEFT: frozen base in its loaded dtype, fp32 adapters and moments).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace bireco::train {

// `precision` (auto | fp32 | bf16 | bf16-mixed) on `device` -> fp32 | bf16 | bf16-mixed; auto
// is bf16-mixed where bf16 matmuls are native (CUDA, AMX / AVX512-BF16 CPUs), else fp32.
std::string resolve_precision(const std::string& precision, const torch::Device& device);

struct PrecisionPlan {
  std::string precision;        // fp32 | bf16 | bf16-mixed
  torch::ScalarType frozen;     // weights that do not train (the base under LoRA)
  torch::ScalarType trainable;  // weights that train, their gradients and AdamW moments
  bool autocast = false;        // forward (and recomputation) under bf16 autocast
};

// The plan for train.precision `precision` and model.dtype `model_dtype` (auto | float32 |
// bfloat16 | float16):
//   fp32        every weight float32, no autocast; model.dtype float32 (auto).
//   bf16        every weight, trainable or not, and the moments bfloat16, no autocast (the
//               authors' stage I); model.dtype bfloat16 (auto).
//   bf16-mixed  trainable weights and moments float32, frozen ones in model.dtype (auto:
//               bfloat16), the passes under bf16 autocast.
// A model.dtype that contradicts the precision is an Error naming both keys.
PrecisionPlan plan_precision(const std::string& precision, const std::string& model_dtype,
                             const torch::Device& device);

// Casts every trainable parameter to plan.trainable in place (parameters keep their identity,
// so modules holding them see the new dtype). Under bf16-mixed this is PEFT's
// autocast_adapter_dtype: adapters created in the base's dtype, then upcast. Call before the
// optimizer creates its moments.
void cast_trainable(const std::vector<torch::Tensor>& parameters, const PrecisionPlan& plan);

// Bytes a parameter costs under `plan` in training: a frozen one its storage; a trainable one
// its weight, its gradient and AdamW's two moments (activations not included).
double frozen_bytes_per_parameter(const PrecisionPlan& plan);
double trainable_bytes_per_parameter(const PrecisionPlan& plan);

// The dtype the trainable parameters compute in: plan.trainable, except that a sharded
// optimizer (dist.shard optimizer | gradients, more than one rank) under bf16-mixed keeps the
// float32 master weights sharded and computes with a bfloat16 copy, as DeepSpeed's bf16 ZeRO
// does (distributed/sharded_optimizer.h).
torch::ScalarType compute_dtype(const PrecisionPlan& plan, bool sharded);

// What one trainable parameter costs one rank of a `world`-rank run with dist.shard `shard`
// (none | optimizer | gradients; sharding does nothing on one rank), in bytes. Unsharded, the
// weight is its own master (master 0). Sharded, the gradient counts this rank's shard of it
// (master dtype) plus, under `optimizer`, the whole compute-dtype .grad kept through
// accumulation; `gradients` keeps at most two buckets of it, not counted here.
struct RankBytes {
  double weight = 0, gradient = 0, master = 0, moments = 0;
  double total() const { return weight + gradient + master + moments; }
};
RankBytes trainable_bytes_per_rank(const PrecisionPlan& plan, const std::string& shard, int world);

}  // namespace bireco::train
