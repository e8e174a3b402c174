// Bucketed gradient all-reduce overlapped with backward. The trick, as DDP's Reducer does it:
//
// 1. At construction the trainable parameters are grouped, in REVERSE order of registration,
//    into buckets of about bucket_mb MiB: backward produces the last layers' gradients first,
//    so the first buckets fill early. Each bucket owns one flat buffer.
// 2. A post-hook on each parameter's AccumulateGrad node fires right after autograd has added
//    a contribution to that parameter's .grad. A parameter can get several contributions in
//    one backward: with gradient checkpointing each use of a layer is recomputed and
//    back-propagated on its own (stage I runs every layer twice per step). So, as DDP's
//    static_graph does, the first synchronised step only counts each parameter's hook calls;
//    from the second on, the hook copies the gradient into its slot of the bucket buffer at
//    the parameter's LAST expected contribution and counts the bucket down.
// 3. When a bucket's count reaches zero it is ready; ready buckets are launched as async
//    all-reduces strictly in bucket order (bucket k waits for buckets < k), because every rank
//    must issue the same collectives in the same order, whatever order hooks fire in.
// 4. The all-reduce runs on c10d's threads (Gloo) or NCCL stream while autograd goes on
//    computing earlier layers' gradients: that is the overlap.
// 5. finish() launches whatever backward did not complete (parameters unused this step, or
//    with fewer contributions than counted, go in with what .grad holds), waits for every
//    bucket, divides by the world size and copies each slot back into its .grad. A gradient
//    that arrives after its slot was copied (the graph grew) is caught: the ranks agree on it
//    through one 1-element all-reduce per step, and then all redo the step's reduction
//    synchronously and count again.
// 6. With set_enabled(false) the hooks do nothing: accumulation micro-steps only add into
//    .grad locally, and the synchronising step's hooks see the accumulated sum.
// Cost of the shortcuts: one extra copy of every gradient into and out of the buckets (DDP
// avoids it by making .grad a view of the bucket), no overlap in the first step, and the
// per-step 1-element agreement.
//
// Reduce-scatter (the sharded optimizer's ZeRO-1/2) changes three things:
// 7. A bucket's buffer exists only from its first copy_in until its piece has arrived, and a
//    parameter's .grad is released once copied into its bucket: what is left of the full
//    gradient is the at most two buckets in flight (launch_ready waits for bucket k-2 before
//    launching bucket k) and the .grad of the parameters whose contributions are not complete.
// 8. Each bucket (padded with zeros to a multiple of the world size) goes out as one
//    _reduce_scatter_base, c10d's reduce_scatter_tensor: rank r receives the sum of piece r,
//    added into its shard_gradient(). Both Gloo and NCCL implement it in torch 2.x, so there is
//    no all-reduce fallback.
// 9. A late contribution (step 5) finds its .grad released, so .grad holds the late part
//    alone: a second round reduces only those and adds them, instead of redoing the step.
#include "bireco/distributed/gradient_sync.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <mutex>
#include <optional>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "bireco/util/error.h"
#include "group_impl.h"

namespace bireco::distributed {

struct Bucket {
  std::vector<size_t> params;    // indices into State::params
  std::vector<int64_t> offsets;  // element offset of each in `buffer`
  int64_t numel = 0;             // padded to a multiple of the world size when scattering
  torch::TensorOptions options;  // the parameters' dtype and device
  torch::Tensor buffer;          // flat; reduce-scatter: only while the bucket is in use
  torch::Tensor piece;           // reduce-scatter: this rank's piece of the sum
  size_t pending = 0;            // gradients still to arrive this step
  c10::intrusive_ptr<c10d::Work> work;
};

struct GradientSync::State {
  Group* group = nullptr;
  std::vector<torch::Tensor> params;
  std::vector<size_t> bucket_of;     // parameter -> bucket
  std::vector<size_t> slot_of;       // parameter -> position within its bucket
  std::vector<bool> ready;           // parameter's gradient is in its bucket this step
  std::vector<int> seen;             // hook calls (contributions) this step
  std::vector<int> expected;         // contributions per synchronised step, once counted
  bool counted = false;              // `expected` is known (after the first finish())
  bool late = false;                 // a contribution came after its parameter was copied
  std::vector<Bucket> buckets;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hook_keys;
  size_t next_to_launch = 0;
  bool enabled = true;
  bool active = false;  // a synchronising backward has started this step
  int64_t launched = 0;
  bool scatter = false;               // reduce-scatter into `shard` (steps 7 to 9)
  torch::Tensor shard;                // this rank's pieces, bucket after bucket
  std::vector<int64_t> shard_offset;  // where bucket k's piece starts in `shard`
  size_t next_to_consume = 0;         // reduce-scatter: the first bucket not yet added in
  std::mutex mutex;

  void copy_in(size_t p) {
    Bucket& b = buckets[bucket_of[p]];
    if (!b.buffer.defined()) {
      // Reduce-scatter: in the parameters' dtype now (the sharded optimizer casts them to the
      // compute dtype after construction).
      b.options = params[b.params.front()].options().requires_grad(false);
      b.buffer = torch::zeros({b.numel}, b.options);
    }
    const size_t slot = slot_of[p];
    torch::Tensor view = b.buffer.narrow(0, b.offsets[slot], params[p].numel()).view(params[p].sizes());
    const torch::Tensor grad = params[p].grad();
    if (grad.defined()) {
      view.copy_(grad);
      if (scatter) params[p].mutable_grad() = torch::Tensor();  // step 7: the bucket holds it
    } else {
      view.zero_();
    }
    ready[p] = true;
    --b.pending;
  }

  void launch_ready() {
    while (next_to_launch < buckets.size() && buckets[next_to_launch].pending == 0) {
      const size_t k = next_to_launch++;
      Bucket& b = buckets[k];
      if (scatter) {
        if (k >= 2) consume_through(k - 2);
        b.piece = torch::empty({b.numel / group->world_size()}, b.options);
        b.work = group->impl().collectives->_reduce_scatter_base(b.piece, b.buffer);
      } else {
        std::vector<at::Tensor> one = {b.buffer};
        b.work = group->impl().collectives->allreduce(one);
      }
      ++launched;
    }
  }

  std::string bucket_name(size_t k) const {
    return "(bucket " + std::to_string(k) + " of " + std::to_string(buckets.size()) + ")";
  }

  // Reduce-scatter: waits for the launched buckets up to `last`, adds their pieces into the
  // shard and frees their buffers (step 7).
  void consume_through(size_t last) {
    for (; next_to_consume <= last && next_to_consume < next_to_launch; ++next_to_consume) {
      Bucket& b = buckets[next_to_consume];
      auto work = std::move(b.work);
      b.work.reset();
      group->impl().wait(work, "gradient reduce_scatter " + bucket_name(next_to_consume));
      shard.narrow(0, shard_offset[next_to_consume], b.piece.numel()).add_(b.piece);
      b.piece = torch::Tensor();
      b.buffer = torch::Tensor();
    }
  }

  // Reduce-scatter's finish() (steps 5, 8 and 9).
  void finish_scatter() {
    for (size_t p = 0; p < params.size(); ++p)
      if (!ready[p]) copy_in(p);
    launch_ready();
    const bool redo = counted && any_rank_late();
    consume_through(buckets.size());
    if (!redo) return;
    for (auto& b : buckets) b.pending = b.params.size();
    next_to_launch = next_to_consume = 0;
    for (size_t p = 0; p < params.size(); ++p) copy_in(p);  // the late parts, zero elsewhere
    launch_ready();
    consume_through(buckets.size());
    counted = false;  // count again, as in the first step
  }

  void on_gradient_ready(size_t p) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!enabled) return;
    active = true;
    ++seen[p];
    if (!counted) return;  // the first step only counts (step 2 above)
    if (ready[p]) {
      late = true;  // finish() redoes the step
    } else if (seen[p] == expected[p]) {
      copy_in(p);
      launch_ready();
    }
  }

  // Waits for every launched bucket; their results are dropped or used by the caller.
  void wait_all() {
    for (size_t k = 0; k < buckets.size(); ++k) {
      if (!buckets[k].work) continue;
      auto work = std::move(buckets[k].work);
      buckets[k].work.reset();
      group->impl().wait(work, "gradient all_reduce " + bucket_name(k));
    }
  }

  void finish_all_reduce();  // finish() without reduce-scatter (step 5)
  void attach_hooks();       // step 2
  void detach_hooks();

  // Whether any rank saw a late contribution this step (one 1-element all-reduce).
  bool any_rank_late() {
    auto flag = torch::full({1}, late ? 1.0 : 0.0,
                            torch::TensorOptions(torch::kFloat32).device(group->impl().device));
    group->all_reduce_mean({flag});
    return flag.item<float>() > 0;
  }
};

GradientSync::GradientSync(Group& group, const std::vector<torch::Tensor>& parameters,
                           double bucket_mb)
    : GradientSync(group, parameters, bucket_mb, std::nullopt) {}

GradientSync::GradientSync(Group& group, const std::vector<torch::Tensor>& parameters,
                           double bucket_mb, torch::ScalarType scatter_dtype)
    : GradientSync(group, parameters, bucket_mb, std::optional<torch::ScalarType>(scatter_dtype)) {}

GradientSync::GradientSync(Group& group, const std::vector<torch::Tensor>& parameters,
                           double bucket_mb, std::optional<torch::ScalarType> scatter_dtype)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.group = &group;
  s.scatter = scatter_dtype.has_value();
  for (const auto& p : parameters) {
    if (p.requires_grad()) s.params.push_back(p);
  }
  const int64_t cap_bytes = static_cast<int64_t>(bucket_mb * 1024 * 1024);
  s.bucket_of.resize(s.params.size());
  s.slot_of.resize(s.params.size());
  s.ready.assign(s.params.size(), false);
  s.seen.assign(s.params.size(), 0);
  // Step 1: reverse order, split at the size cap or where dtype / device changes.
  std::vector<std::vector<size_t>> groups;
  int64_t bytes = 0;
  for (size_t k = s.params.size(); k-- > 0;) {
    const torch::Tensor& p = s.params[k];
    const bool fits = !groups.empty() && bytes < cap_bytes &&
                      s.params[groups.back().front()].dtype() == p.dtype() &&
                      s.params[groups.back().front()].device() == p.device();
    if (!fits) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  for (const auto& members : groups) {
    Bucket b;
    int64_t numel = 0;
    for (size_t p : members) {
      s.bucket_of[p] = s.buckets.size();
      s.slot_of[p] = b.params.size();
      b.params.push_back(p);
      b.offsets.push_back(numel);
      numel += s.params[p].numel();
    }
    const int64_t world = group.world_size();
    b.numel = s.scatter ? (numel + world - 1) / world * world : numel;
    b.options = s.params[members.front()].options().requires_grad(false);
    group.impl().check_device(torch::empty({0}, b.options),
                              "gradient sync (the model's parameters)");
    if (!s.scatter) b.buffer = torch::zeros({numel}, b.options);
    b.pending = members.size();
    s.shard_offset.push_back(
        s.buckets.empty() ? 0 : s.shard_offset.back() + s.buckets.back().numel / world);
    s.buckets.push_back(std::move(b));
  }
  if (s.scatter) {
    const int64_t length =
        s.buckets.empty() ? 0 : s.shard_offset.back() + s.buckets.back().numel / group.world_size();
    s.shard = torch::zeros({length}, torch::TensorOptions(*scatter_dtype).device(group.device()));
  }
  s.attach_hooks();
}

void GradientSync::State::attach_hooks() {
  // Step 2: the hooks; the accumulators are kept alive here (a parameter holds its own only
  // weakly, and a new one would not carry the hook).
  for (size_t p = 0; p < params.size(); ++p) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params[p]);
    State* state = this;
    hook_keys.push_back(
        accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [state, p](const torch::autograd::variable_list& outputs,
                       const torch::autograd::variable_list& /*inputs*/) {
              state->on_gradient_ready(p);
              return outputs;
            })));
    accumulators.push_back(std::move(accumulator));
  }
}

void GradientSync::State::detach_hooks() {
  for (size_t p = 0; p < accumulators.size(); ++p) accumulators[p]->del_post_hook(hook_keys[p]);
  accumulators.clear();
  hook_keys.clear();
}

void GradientSync::reattach() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->detach_hooks();
  state_->attach_hooks();
}

GradientSync::~GradientSync() {
  State& s = *state_;
  s.detach_hooks();
  // Outstanding work (an exception skipped finish()) must end before its buffer is freed.
  for (auto& b : s.buckets) {
    if (b.work) {
      try {
        b.work->wait(s.group->impl().timeout);
      } catch (const std::exception&) {
      }
    }
  }
}

void GradientSync::set_enabled(bool enabled) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->enabled = enabled;
}

bool GradientSync::enabled() const { return state_->enabled; }
size_t GradientSync::bucket_count() const { return state_->buckets.size(); }

std::vector<GradientSync::BucketLayout> GradientSync::layout() const {
  std::vector<BucketLayout> out;
  for (const auto& b : state_->buckets) out.push_back({b.params, b.offsets, b.numel});
  return out;
}

torch::Tensor& GradientSync::shard_gradient() {
  if (!state_->scatter) throw Error("GradientSync::shard_gradient: this sync all-reduces");
  return state_->shard;
}
int64_t GradientSync::buckets_launched() const { return state_->launched; }

void GradientSync::finish() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.active) return;
  if (s.scatter) {
    s.finish_scatter();
  } else {
    s.finish_all_reduce();
  }
  if (!s.counted) {  // step 2: from now on each parameter is copied at its last contribution
    s.expected = s.seen;
    s.counted = true;
  }
  for (auto& b : s.buckets) b.pending = b.params.size();
  s.ready.assign(s.params.size(), false);
  s.seen.assign(s.params.size(), 0);
  s.late = false;
  s.next_to_launch = s.next_to_consume = 0;
  s.active = false;
}

void GradientSync::State::finish_all_reduce() {
  State& s = *this;
  // Step 5: complete the buckets backward left open, then launch them in order.
  for (size_t p = 0; p < s.params.size(); ++p) {
    if (!s.ready[p]) s.copy_in(p);
  }
  s.launch_ready();
  if (s.counted && s.any_rank_late()) {
    // Some bucket went out without a late contribution: reduce everything again, as in the
    // counting step (every rank takes this branch, so the collectives still match).
    s.wait_all();
    for (auto& b : s.buckets) b.pending = b.params.size();
    s.next_to_launch = 0;
    for (size_t p = 0; p < s.params.size(); ++p) s.copy_in(p);
    s.launch_ready();
    s.counted = false;
  }
  s.wait_all();
  const double world = s.group->world_size();
  for (auto& b : s.buckets) {
    b.buffer.div_(world);
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      torch::Tensor& param = s.params[b.params[slot]];
      torch::Tensor averaged = b.buffer.narrow(0, b.offsets[slot], param.numel()).view(param.sizes());
      if (param.grad().defined()) {
        param.mutable_grad().copy_(averaged);
      } else {
        param.mutable_grad() = averaged.clone();
      }
    }
  }
}

void sync_gradients_reference(Group& group, const std::vector<torch::Tensor>& parameters) {
  for (const auto& p : parameters) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    group.all_reduce_mean({p.grad()});
  }
}

}  // namespace bireco::distributed
