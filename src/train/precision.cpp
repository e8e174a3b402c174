#include "bireco/train/precision.h"

#include "bireco/model/load.h"
#include "bireco/util/error.h"

namespace bireco::train {

std::string resolve_precision(const std::string& precision, const torch::Device& device) {
  const std::string wanted =
      precision == "auto" ? (model::native_bf16(device) ? "bf16-mixed" : "fp32") : precision;
  if (wanted == "fp32" || wanted == "bf16" || wanted == "bf16-mixed") return wanted;
  throw Error("train.precision: '" + precision + "' is not one of auto, fp32, bf16, bf16-mixed");
}

PrecisionPlan plan_precision(const std::string& precision, const std::string& model_dtype,
                             const torch::Device& device) {
  PrecisionPlan plan;
  plan.precision = resolve_precision(precision, device);
  const bool automatic = model_dtype == "auto";
  const auto stored = automatic ? torch::kFloat32 : model::parse_dtype(model_dtype);
  const std::string both =
      "model.dtype '" + model_dtype + "' contradicts train.precision '" + precision + "'";
  if (plan.precision == "fp32") {
    if (!automatic && stored != torch::kFloat32)
      throw Error(
          both +
          ": fp32 computes with float32 weights; train.precision bf16-mixed keeps the frozen "
          "weights in " +
          model_dtype + " and computes under bf16 autocast");
    plan.frozen = plan.trainable = torch::kFloat32;
  } else if (plan.precision == "bf16") {
    if (!automatic && stored != torch::kBFloat16)
      throw Error(both +
                  ": bf16 stores every weight, trainable or not, in bfloat16; train.precision "
                  "bf16-mixed trains float32 weights with frozen ones in " +
                  model_dtype);
    plan.frozen = plan.trainable = torch::kBFloat16;
  } else {
    plan.frozen = automatic ? torch::kBFloat16 : stored;
    plan.trainable = torch::kFloat32;
    plan.autocast = true;
  }
  return plan;
}

void cast_trainable(const std::vector<torch::Tensor>& parameters, const PrecisionPlan& plan) {
  torch::NoGradGuard no_grad;
  for (auto p : parameters)
    if (p.scalar_type() != plan.trainable) p.set_data(p.to(plan.trainable));
}

double frozen_bytes_per_parameter(const PrecisionPlan& plan) {
  return static_cast<double>(c10::elementSize(plan.frozen));
}

double trainable_bytes_per_parameter(const PrecisionPlan& plan) {
  return 4.0 *
         static_cast<double>(c10::elementSize(plan.trainable));  // weight, gradient, 2 moments
}

torch::ScalarType compute_dtype(const PrecisionPlan& plan, bool sharded) {
  return sharded && plan.precision == "bf16-mixed" ? torch::kBFloat16 : plan.trainable;
}

RankBytes trainable_bytes_per_rank(const PrecisionPlan& plan, const std::string& shard, int world) {
  if (world < 1) throw Error("--world-size: must be at least 1");
  const double master = static_cast<double>(c10::elementSize(plan.trainable));
  RankBytes bytes;
  if (shard == "none" || world == 1) {
    bytes.weight = bytes.gradient = master;
    bytes.moments = 2 * master;
    return bytes;
  }
  if (shard != "optimizer" && shard != "gradients")
    throw Error("dist.shard: '" + shard + "' is not one of none, optimizer, gradients");
  const double compute = static_cast<double>(c10::elementSize(compute_dtype(plan, true)));
  bytes.weight = compute;
  bytes.gradient = master / world + (shard == "optimizer" ? compute : 0.0);
  bytes.master = master / world;
  bytes.moments = 2 * master / world;
  return bytes;
}

}  // namespace bireco::train
