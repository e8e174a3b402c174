#include "bireco/objective/objective.h"

#include "bireco/objective/causal_lm.h"
#include "bireco/objective/contrastive.h"
#include "bireco/objective/reconstruction.h"
#include "bireco/util/error.h"

namespace bireco::objective {

std::unique_ptr<Objective> make_objective(const config::StageConfig& config, int64_t eos_id, distributed::Group* group) {
  if (config.stage == "reconstruction") {
    if (eos_id < 0) throw Error("stage reconstruction: the tokenizer has no EOS token");
    return std::make_unique<Reconstruction>(reconstruction_options(config, eos_id));
  }
  if (config.stage == "lm")
    return std::make_unique<CausalLm>(config.objective.loss_chunk_tokens,
                                      head_gradient_from_name(config.objective.loss_head_gradient));
  if (config.stage == "contrastive") return std::make_unique<Contrastive>(contrastive_options(config), group);
  throw Error("stage: '" + config.stage + "' is not one of reconstruction, contrastive, lm");
}

}  // namespace bireco::objective

namespace bireco::objective {

void add_device_metrics(TensorSums& sums, const TensorSums& more) {
  for (const auto& [name, value] : more) {
    auto v = value.detach().to(torch::kFloat64);
    auto found = sums.find(name);
    if (found == sums.end())
      sums.emplace(name, v);
    else
      found->second = found->second + v;
  }
}

void read_device_metrics(const TensorSums& sums, Sums& into) {
  if (sums.empty()) return;
  std::vector<torch::Tensor> values;
  for (const auto& [name, value] : sums) values.push_back(value.reshape({}).to(sums.begin()->second.device()));
  const auto host = torch::stack(values).to(torch::kCPU);  // the one synchronisation
  const auto* at = host.data_ptr<double>();
  size_t i = 0;
  for (const auto& [name, value] : sums) into[name] += at[i++];
}

Sums ObjectiveOutput::read_metrics() const {
  Sums all = metrics;
  TensorSums device;
  add_device_metrics(device, device_metrics);
  read_device_metrics(device, all);
  return all;
}

}  // namespace bireco::objective
