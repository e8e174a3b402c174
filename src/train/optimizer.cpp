#include "bireco/train/optimizer.h"

#include "bireco/util/error.h"

namespace bireco::train {
namespace {

void check_adamw(const config::OptimConfig& optim) {
  if (optim.name != "adamw") throw Error("optim.name: '" + optim.name + "' is not one of adamw");
  if (optim.betas.size() != 2) throw Error("optim.betas: expected two numbers");
}

// LibTorch keys the optimizer state by the parameter's TensorImpl.
void* state_key(const torch::Tensor& p) { return p.unsafeGetTensorImpl(); }

}  // namespace

bool no_weight_decay(const std::string& name) {
  const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
  return bias || name.find("norm") != std::string::npos;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(model::Transformer& model, const config::OptimConfig& optim) {
  check_adamw(optim);
  std::vector<torch::Tensor> decay, plain;
  for (const auto& item : model->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    (no_weight_decay(item.key()) ? plain : decay).push_back(item.value());
  }
  auto options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(optim.lr)
                                                            .betas({optim.betas[0], optim.betas[1]})
                                                            .eps(optim.eps)
                                                            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(optim.weight_decay));
  groups.emplace_back(plain, options(0.0));
  return std::make_unique<torch::optim::AdamW>(std::move(groups),
                                               torch::optim::AdamWOptions(optim.lr).weight_decay(optim.weight_decay));
}

std::unique_ptr<distributed::ShardedOptimizer> make_sharded_adamw(distributed::Group& group,
                                                                  model::Transformer& model,
                                                                  const config::StageConfig& config,
                                                                  torch::ScalarType master,
                                                                  torch::ScalarType compute) {
  const auto& optim = config.optim;
  check_adamw(optim);
  distributed::ShardedAdamWOptions options;
  options.mode = distributed::parse_shard_mode(config.dist.shard);
  options.beta1 = optim.betas[0];
  options.beta2 = optim.betas[1];
  options.eps = optim.eps;
  options.weight_decay = optim.weight_decay;
  options.bucket_mb = config.dist.bucket_mb;
  options.master = master;
  options.compute = compute;
  std::vector<distributed::ShardedParameter> parameters;
  for (const auto& item : model->named_parameters())
    if (item.value().requires_grad())
      parameters.push_back({item.key(), item.value(), !no_weight_decay(item.key())});
  return std::make_unique<distributed::ShardedOptimizer>(group, std::move(parameters), options);
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

model::NamedTensors optimizer_state_tensors(torch::optim::AdamW& optimizer, model::Transformer& model) {
  model::NamedTensors out;
  auto& state = optimizer.state();
  for (const auto& item : model->named_parameters()) {
    auto found = state.find(state_key(item.value()));
    if (found == state.end()) continue;
    auto& s = static_cast<torch::optim::AdamWParamState&>(*found->second);
    out.emplace_back(item.key() + ".exp_avg", s.exp_avg());
    out.emplace_back(item.key() + ".exp_avg_sq", s.exp_avg_sq());
    out.emplace_back(item.key() + ".step", torch::tensor({s.step()}, torch::kLong));
  }
  return out;
}

void load_optimizer_state(torch::optim::AdamW& optimizer, model::Transformer& model,
                          const std::map<std::string, torch::Tensor>& tensors, const std::string& source) {
  auto& state = optimizer.state();
  state.clear();
  auto get = [&](const std::string& name) -> const torch::Tensor& {
    auto found = tensors.find(name);
    if (found == tensors.end()) throw Error(source + ": optimizer state '" + name + "' is missing");
    return found->second;
  };
  for (const auto& item : model->named_parameters()) {
    const auto& p = item.value();
    if (!p.requires_grad() || !tensors.count(item.key() + ".step")) continue;
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    for (const char* part : {".exp_avg", ".exp_avg_sq"}) {
      const auto& t = get(item.key() + part);
      if (t.sizes() != p.sizes())
        throw Error(source + ": optimizer state '" + item.key() + part + "' has the wrong shape");
    }
    s->exp_avg(get(item.key() + ".exp_avg").to(p.options()).clone());
    s->exp_avg_sq(get(item.key() + ".exp_avg_sq").to(p.options()).clone());
    s->step(get(item.key() + ".step").item<int64_t>());
    state[state_key(p)] = std::move(s);
  }
}

}  // namespace bireco::train
