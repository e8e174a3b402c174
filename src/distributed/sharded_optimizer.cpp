// ZeRO-1/2 AdamW over c10d. How a step goes (layout and modes: sharded_optimizer.h):
//
// 1. Construction: GradientSync (reduce-scatter mode) groups the trainable parameters into
//    buckets; every rank cuts each padded bucket into `world` pieces and keeps piece `rank`.
//    Its segments list where each parameter's elements in that piece sit in the shard. The
//    master shard is copied out of the parameters (equal on every rank after the broadcast),
//    then the parameters are cast to the compute dtype.
// 2. Backward: GradientSync reduce-scatters each bucket as it fills; this rank's summed piece
//    is added into the gradient shard (master dtype), and .grad is released.
// 3. clip_grad_norm: one all-reduce of this rank's sum of squares gives the global norm.
// 4. step: AdamW on the flat shards, weight decay applied per segment (biases and norms are
//    exempt, train::no_weight_decay); then bucket by bucket, every rank's updated piece, cast
//    to the compute dtype, is all-gathered (_allgather_base) and copied into the parameters.
//    Cost of the simplicity: the all-gathers run one bucket at a time after the update,
//    without overlapping the next step's forward as DeepSpeed's prefetching does.
// 5. Checkpoints gather the shards bucket by bucket the same way, into per-parameter CPU
//    tensors on rank 0: the device holds one extra bucket at a time, rank 0's memory the full
//    state (as an unsharded run's does when it saves).
#include "bireco/distributed/sharded_optimizer.h"

#include <algorithm>
#include <cmath>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "bireco/util/error.h"
#include "group_impl.h"

namespace bireco::distributed {

ShardMode parse_shard_mode(const std::string& shard) {
  if (shard == "none") return ShardMode::kNone;
  if (shard == "optimizer") return ShardMode::kOptimizer;
  if (shard == "gradients") return ShardMode::kGradients;
  throw Error("dist.shard: '" + shard + "' is not one of none, optimizer, gradients");
}

namespace {

constexpr int64_t kUpdateChunk = int64_t{1} << 20;  // elements per AdamW update chunk (4 MiB fp32)

// The elements of one parameter that lie in this rank's shard.
struct Segment {
  size_t param = 0;         // index into State::params
  int64_t param_begin = 0;  // first element, in the parameter's flat view
  int64_t shard_begin = 0;  // where they sit in the shard
  int64_t length = 0;
};

}  // namespace

struct ShardedOptimizer::State {
  Group* group = nullptr;
  ShardedAdamWOptions options;
  std::vector<ShardedParameter> params;
  std::unique_ptr<GradientSync> sync;
  std::vector<GradientSync::BucketLayout> buckets;
  std::vector<int64_t> bucket_shard_offset;  // where bucket k's piece starts in the shards
  std::vector<Segment> segments;
  torch::Tensor master, exp_avg, exp_avg_sq;  // this rank's shard, options.master
  int64_t steps = 0;

  int64_t piece(size_t k) const { return buckets[k].numel / group->world_size(); }

  // Bucket k's full length, every rank's piece of `shard` in rank order (one all-gather).
  torch::Tensor gather_bucket(size_t k, const torch::Tensor& shard, torch::ScalarType dtype) {
    auto mine = shard.narrow(0, bucket_shard_offset[k], piece(k)).to(dtype).contiguous();
    auto full = torch::empty({buckets[k].numel}, mine.options());
    group->impl().wait(group->impl().collectives->_allgather_base(full, mine),
                       "all_gather of the sharded optimizer's bucket " + std::to_string(k));
    return full;
  }

  // Runs `each(param index, its flat elements in `full`)` for every parameter of bucket k.
  template <typename F>
  void for_each_in_bucket(size_t k, const torch::Tensor& full, F each) {
    const auto& b = buckets[k];
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      const size_t p = b.params[slot];
      each(p, full.narrow(0, b.offsets[slot], params[p].tensor.numel()));
    }
  }

  // The shard's elements of parameter values `flat` (per parameter, flat views) copied in.
  void copy_into_shard(torch::Tensor& shard, const std::vector<torch::Tensor>& flat) {
    for (const auto& s : segments)
      shard.narrow(0, s.shard_begin, s.length)
          .copy_(flat[s.param].narrow(0, s.param_begin, s.length));
  }

  std::vector<torch::Tensor> flat_parameters() const {
    std::vector<torch::Tensor> out;
    for (const auto& p : params) out.push_back(p.tensor.detach().reshape({-1}));
    return out;
  }

  // Tensor::set_data to another dtype (or device) replaces a parameter's gradient accumulator,
  // so GradientSync hooks the new ones.
  void cast_parameters(torch::ScalarType dtype) {
    torch::NoGradGuard no_grad;
    bool changed = false;
    for (auto& p : params) {
      if (p.tensor.scalar_type() == dtype) continue;
      p.tensor.set_data(p.tensor.to(dtype));
      changed = true;
    }
    if (changed) sync->reattach();
  }
};

ShardedOptimizer::ShardedOptimizer(Group& group, std::vector<ShardedParameter> parameters,
                                   const ShardedAdamWOptions& options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  if (options.mode == ShardMode::kNone) throw Error("ShardedOptimizer: dist.shard is none");
  s.group = &group;
  s.options = options;
  s.params = std::move(parameters);
  std::vector<torch::Tensor> tensors;
  for (const auto& p : s.params) {
    if (!p.tensor.requires_grad()) throw Error("ShardedOptimizer: `" + p.name + "` does not train");
    if (p.tensor.scalar_type() != options.master)
      throw Error("ShardedOptimizer: `" + p.name + "` is not in the master dtype");
    tensors.push_back(p.tensor);
  }
  // Step 1.
  s.sync = std::make_unique<GradientSync>(group, tensors, options.bucket_mb, options.master);
  s.buckets = s.sync->layout();
  const int64_t rank = group.rank();
  int64_t offset = 0;
  for (size_t k = 0; k < s.buckets.size(); ++k) {
    s.bucket_shard_offset.push_back(offset);
    const auto& b = s.buckets[k];
    const int64_t begin = rank * s.piece(k), end = begin + s.piece(k);
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      const int64_t from = std::max(begin, b.offsets[slot]);
      const int64_t to = std::min(end, b.offsets[slot] + s.params[b.params[slot]].tensor.numel());
      if (from < to)
        s.segments.push_back(
            {b.params[slot], from - b.offsets[slot], offset + from - begin, to - from});
    }
    offset += s.piece(k);
  }
  const auto shard_options = torch::TensorOptions(options.master).device(group.device());
  s.master = torch::zeros({offset}, shard_options);
  s.exp_avg = torch::zeros({offset}, shard_options);
  s.exp_avg_sq = torch::zeros({offset}, shard_options);
  s.copy_into_shard(s.master, s.flat_parameters());
  s.cast_parameters(options.compute);
}

ShardedOptimizer::~ShardedOptimizer() = default;

int64_t ShardedOptimizer::shard_numel() const { return state_->master.numel(); }
int64_t ShardedOptimizer::steps() const { return state_->steps; }

void ShardedOptimizer::zero_grad() {
  state_->sync->shard_gradient().zero_();
  for (auto& p : state_->params) p.tensor.mutable_grad() = torch::Tensor();
}

void ShardedOptimizer::begin_micro_step(bool last) {
  state_->sync->set_enabled(last || state_->options.mode == ShardMode::kGradients);
}

void ShardedOptimizer::end_micro_step(bool /*last*/) {
  // Step 2: a no-op on ZeRO-1's accumulation micro-steps (nothing was synchronised).
  state_->sync->finish();
}

double ShardedOptimizer::clip_grad_norm(double max_norm) {
  State& s = *state_;
  torch::Tensor& grad = s.sync->shard_gradient();
  // Step 3: padding is zero, and every element is in exactly one rank's shard. (norm() reduces
  // without a shard-sized temporary, as clip_grad_norm_'s per-parameter norms do.)
  const double local = grad.norm().item<double>();
  auto squares =
      torch::full({1}, local * local, torch::TensorOptions(torch::kFloat64).device(grad.device()));
  s.group->all_reduce_mean({squares});
  const double norm = std::sqrt(squares.item<double>() * s.group->world_size());
  if (max_norm > 0) {
    const double coefficient = std::min(1.0, max_norm / (norm + 1e-6));
    grad.mul_(coefficient);
  }
  return norm;
}

void ShardedOptimizer::step(double lr) {
  State& s = *state_;
  const auto& o = s.options;
  torch::NoGradGuard no_grad;
  const torch::Tensor& grad = s.sync->shard_gradient();
  // Step 4, in torch::optim::AdamW::step's order and arithmetic.
  if (o.weight_decay != 0)
    for (const auto& seg : s.segments)
      if (s.params[seg.param].decay)
        s.master.narrow(0, seg.shard_begin, seg.length).mul_(1 - lr * o.weight_decay);
  ++s.steps;
  const double bias_correction1 = 1 - std::pow(o.beta1, static_cast<double>(s.steps));
  const double bias_correction2 = 1 - std::pow(o.beta2, static_cast<double>(s.steps));
  // In chunks, so that the temporaries (the denominator) stay small beside the shard.
  const int64_t n = s.master.numel();
  for (int64_t begin = 0; begin < n; begin += kUpdateChunk) {
    const int64_t length = std::min(kUpdateChunk, n - begin);
    auto g = grad.narrow(0, begin, length), m = s.exp_avg.narrow(0, begin, length),
         v = s.exp_avg_sq.narrow(0, begin, length);
    m.mul_(o.beta1).add_(g, 1 - o.beta1);
    v.mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);
    const auto denom = (v.sqrt() / std::sqrt(bias_correction2)).add_(o.eps);
    s.master.narrow(0, begin, length).addcdiv_(m, denom, -lr / bias_correction1);
  }
  for (size_t k = 0; k < s.buckets.size(); ++k) {
    const auto full = s.gather_bucket(k, s.master, o.compute);
    s.for_each_in_bucket(k, full, [&](size_t p, const torch::Tensor& values) {
      s.params[p].tensor.detach().view({-1}).copy_(values);
    });
  }
}

model::NamedTensors ShardedOptimizer::state_tensors() {
  State& s = *state_;
  model::NamedTensors out;
  if (s.steps == 0) return out;  // as torch's AdamW: no state before the first step
  const bool main = s.group->is_main();
  std::vector<torch::Tensor> exp_avg(s.params.size()), exp_avg_sq(s.params.size());
  for (size_t k = 0; k < s.buckets.size(); ++k) {
    const auto m = s.gather_bucket(k, s.exp_avg, s.options.master);
    const auto v = s.gather_bucket(k, s.exp_avg_sq, s.options.master);
    if (!main) continue;
    s.for_each_in_bucket(k, m, [&](size_t p, const torch::Tensor& values) {
      exp_avg[p] = values.view(s.params[p].tensor.sizes()).cpu().clone();
    });
    s.for_each_in_bucket(k, v, [&](size_t p, const torch::Tensor& values) {
      exp_avg_sq[p] = values.view(s.params[p].tensor.sizes()).cpu().clone();
    });
  }
  if (!main) return out;
  for (size_t p = 0; p < s.params.size(); ++p) {
    out.emplace_back(s.params[p].name + ".exp_avg", exp_avg[p]);
    out.emplace_back(s.params[p].name + ".exp_avg_sq", exp_avg_sq[p]);
    out.emplace_back(s.params[p].name + ".step", torch::tensor({s.steps}, torch::kLong));
  }
  return out;
}

void ShardedOptimizer::load_state(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::string& source) {
  State& s = *state_;
  auto get = [&](const std::string& name, const torch::Tensor& like) {
    auto found = tensors.find(name);
    if (found == tensors.end()) throw Error(source + ": optimizer state '" + name + "' is missing");
    if (found->second.sizes() != like.sizes())
      throw Error(source + ": optimizer state '" + name + "' has the wrong shape");
    return found->second.to(s.master.options()).reshape({-1});
  };
  // A parameter without state (it had no gradient yet in the run that saved) starts at zero,
  // as torch's AdamW would start it; the step count is the largest saved one.
  std::vector<torch::Tensor> exp_avg, exp_avg_sq;
  int64_t steps = 0;
  for (const auto& p : s.params) {
    if (!tensors.count(p.name + ".step")) {
      exp_avg.push_back(torch::zeros({p.tensor.numel()}, s.master.options()));
      exp_avg_sq.push_back(exp_avg.back());
      continue;
    }
    exp_avg.push_back(get(p.name + ".exp_avg", p.tensor));
    exp_avg_sq.push_back(get(p.name + ".exp_avg_sq", p.tensor));
    steps = std::max(steps, tensors.at(p.name + ".step").item<int64_t>());
  }
  s.copy_into_shard(s.exp_avg, exp_avg);
  s.copy_into_shard(s.exp_avg_sq, exp_avg_sq);
  s.steps = steps;
}

void ShardedOptimizer::with_master_weights(const std::function<void()>& use) {
  State& s = *state_;
  if (s.options.master == s.options.compute) return use();
  const bool main = s.group->is_main();
  std::vector<torch::Tensor> full(s.params.size());
  for (size_t k = 0; k < s.buckets.size(); ++k) {
    const auto values = s.gather_bucket(k, s.master, s.options.master);
    if (!main) continue;
    s.for_each_in_bucket(k, values, [&](size_t p, const torch::Tensor& v) {
      full[p] = v.view(s.params[p].tensor.sizes()).cpu().clone();
    });
  }
  if (!main) return use();
  std::vector<torch::Tensor> compute;
  for (size_t p = 0; p < s.params.size(); ++p) {
    compute.push_back(s.params[p].tensor.detach());
    s.params[p].tensor.set_data(full[p]);
  }
  // The compute copy comes back even when `use` throws (set_data to another dtype and device
  // replaces the gradient accumulators: hooked again).
  struct Restore {
    State& s;
    std::vector<torch::Tensor>& compute;
    ~Restore() {
      for (size_t p = 0; p < s.params.size(); ++p) s.params[p].tensor.set_data(compute[p]);
      s.sync->reattach();
    }
  } restore{s, compute};
  use();
}

void ShardedOptimizer::reload_master_weights(const std::function<void()>& load) {
  State& s = *state_;
  s.cast_parameters(s.options.master);
  load();
  torch::NoGradGuard no_grad;
  s.copy_into_shard(s.master, s.flat_parameters());
  s.cast_parameters(s.options.compute);
}

}  // namespace bireco::distributed
