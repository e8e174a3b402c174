// One rank of the multi-process dist tests, started by `bireco launch` (or by hand with RANK
// etc.): `dist_worker <scenario> <out-dir> [timeout_s]`. Writes its results as
// <out-dir>/<scenario>_rank<R>.pt for the test to compare with single-process references.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "bireco/distributed/all_gather.h"
#include "bireco/distributed/gradient_sync.h"
#include "bireco/distributed/group.h"
#include "bireco/distributed/sharded_optimizer.h"
#include "bireco/model/checkpointing.h"
#include "bireco/util/error.h"
#include "tiny_mlp.h"

namespace {

using namespace bireco;
using namespace bireco::test::dist;

std::vector<torch::Tensor> grads_of(torch::nn::Sequential& mlp) {
  std::vector<torch::Tensor> out;
  for (const auto& p : mlp->parameters()) out.push_back(p.grad());
  return detached(out);
}

std::vector<torch::Tensor> run(const std::string& scenario, distributed::Group* group, int rank, int world) {
  // ~100-byte buckets: the MLP's 3 trainable tensors (12, 192, 256 bytes, in backward order)
  // make 2 buckets, one of them holding 2 tensors.
  constexpr double kBucketMb = 0.0001;
  if (scenario == "rendezvous") {
    std::printf("rank %d of %d\n", rank, world);
    distributed::barrier(group);
    return {torch::tensor({rank, world})};
  }
  if (scenario == "broadcast") {
    auto mlp = make_mlp(100 + rank);
    distributed::broadcast_parameters(*group, mlp->parameters());
    return detached(mlp->parameters());
  }
  if (scenario == "grad_sync") {
    auto mlp = make_mlp(7);
    auto [x, y] = make_batch(1, 8);
    distributed::GradientSync sync(*group, mlp->parameters(), kBucketMb);
    mlp_loss(mlp, shard(x, rank, world), shard(y, rank, world)).backward();
    const auto local = grads_of(mlp);
    sync.finish();
    auto out = grads_of(mlp);
    // The reference on the same local gradients.
    for (size_t i = 0; i < local.size(); ++i) {
      if (local[i].numel() > 0) mlp->parameters()[i].mutable_grad() = local[i].clone();
    }
    distributed::sync_gradients_reference(*group, mlp->parameters());
    for (const auto& g : grads_of(mlp)) out.push_back(g);
    out.push_back(torch::tensor({static_cast<int64_t>(sync.bucket_count()), sync.buckets_launched()}));
    return out;
  }
  if (scenario == "no_sync") {
    // 2 micro-steps of 2 rows on each rank; the first one accumulates without communication.
    auto mlp = make_mlp(7);
    auto [x, y] = make_batch(2, 8);
    const auto xs = shard(x, rank, world), ys = shard(y, rank, world);
    distributed::GradientSync sync(*group, mlp->parameters(), kBucketMb);
    sync.set_enabled(false);
    (mlp_loss(mlp, shard(xs, 0, 2), shard(ys, 0, 2)) / 2).backward();
    sync.finish();  // nothing to do: no synchronised backward ran
    auto out = grads_of(mlp);
    const int64_t launched_after_no_sync = sync.buckets_launched();
    sync.set_enabled(true);
    (mlp_loss(mlp, shard(xs, 1, 2), shard(ys, 1, 2)) / 2).backward();
    sync.finish();
    for (const auto& g : grads_of(mlp)) out.push_back(g);
    out.push_back(torch::tensor({launched_after_no_sync, sync.buckets_launched()}));
    return out;
  }
  if (scenario == "checkpointed_reuse") {
    // The MLP runs several times per step, each use checkpointed (recomputed and
    // back-propagated on its own, as the trainer's layers are), so every hook fires once per
    // use: 2 uses in steps 0 and 1, 3 in steps 2 and 3 (the graph grows after it was
    // counted). Per step: the synced gradients, the reference on the same local gradients,
    // and the buckets launched during backward and during finish().
    auto mlp = make_mlp(7);
    distributed::GradientSync sync(*group, mlp->parameters(), kBucketMb);
    auto use = [&mlp](const torch::Tensor& x) {
      return model::checkpoint([&mlp](const torch::Tensor& t) { return mlp->forward(t); }, x);
    };
    std::vector<torch::Tensor> out;
    for (int step = 0; step < 4; ++step) {
      auto [x, y] = make_batch(40 + step, 8);
      const auto xs = shard(x, rank, world), ys = shard(y, rank, world);
      mlp->zero_grad();
      const int64_t before = sync.buckets_launched();
      auto loss = torch::mse_loss(use(xs), ys) + torch::mse_loss(use(xs.flip(0)), ys * 0.5);
      if (step >= 2) loss = loss + torch::mse_loss(use(xs * 2), ys);
      loss.backward();
      const int64_t in_backward = sync.buckets_launched() - before;
      const auto local = grads_of(mlp);
      sync.finish();
      const int64_t in_finish = sync.buckets_launched() - before - in_backward;
      for (const auto& g : grads_of(mlp)) out.push_back(g);
      for (size_t i = 0; i < local.size(); ++i) {
        if (local[i].numel() > 0) mlp->parameters()[i].mutable_grad() = local[i].clone();
      }
      distributed::sync_gradients_reference(*group, mlp->parameters());
      for (const auto& g : grads_of(mlp)) out.push_back(g);
      out.push_back(torch::tensor({in_backward, in_finish, static_cast<int64_t>(sync.bucket_count())}));
    }
    return out;
  }
  if (scenario == "wrong_device") {
    // A collective handed a tensor on another device than the group's (here the meta device;
    // with NCCL, a CPU tensor) is an error naming the collective, before anything is sent.
    auto t = torch::empty({1}, torch::TensorOptions().device(torch::kMeta));
    group->all_reduce_mean({t});
    return {};
  }
  if (scenario == "all_gather") {
    auto x = gather_input(rank).requires_grad_();
    auto gathered = distributed::all_gather_with_grad(*group, x);
    gather_loss(gathered, rank, world).backward();
    return {gathered.detach(), x.grad()};
  }
  if (scenario == "train") {
    // SGD on rank r's share of each batch; with one process the whole batch, no group.
    auto mlp = make_mlp(rank == 0 ? 7 : 99);  // rank 1 starts elsewhere: broadcast fixes it
    std::unique_ptr<distributed::GradientSync> sync;
    if (group != nullptr) {
      distributed::broadcast_parameters(*group, mlp->parameters());
      sync = std::make_unique<distributed::GradientSync>(*group, mlp->parameters(), kBucketMb);
    }
    for (int step = 0; step < kTrainSteps; ++step) {
      auto [x, y] = make_batch(1000 + step, kTrainBatch);
      mlp->zero_grad();
      mlp_loss(mlp, shard(x, rank, world), shard(y, rank, world)).backward();
      if (sync) sync->finish();
      torch::NoGradGuard no_grad;
      for (auto& p : mlp->parameters()) {
        if (p.requires_grad()) p.sub_(kTrainLr * p.grad());
      }
    }
    const auto params = detached(mlp->parameters());
    double checksum = 0;
    for (const auto& p : params) checksum += p.sum().item<double>();
    std::printf("final parameter sum %.6f\n", checksum);
    return params;
  }
  if (scenario == "sharded_adamw_optimizer" || scenario == "sharded_adamw_gradients") {
    // 3 AdamW steps of 2 micro-steps (lr 0.05, weight decay 0.1 on the weights, none on the
    // last bias, clipping at 0.5): ShardedOptimizer on the ranks, torch::optim::AdamW in one
    // process. Each rank's loss is its rows' share of the global batch's mean, so the summed
    // gradient is the full batch's. Returns the weights, every step's gradient norm, and (rank
    // 0, or the one process) the last layer's moments and step count.
    auto mlp = make_mlp(7);
    const auto params = mlp->named_parameters();
    constexpr double kLr = 0.05, kDecay = 0.1, kClip = 0.5;
    std::unique_ptr<distributed::ShardedOptimizer> sharded;
    std::unique_ptr<torch::optim::AdamW> reference;
    if (group != nullptr) {
      distributed::ShardedAdamWOptions options;
      options.mode =
          distributed::parse_shard_mode(scenario.substr(std::string("sharded_adamw_").size()));
      options.weight_decay = kDecay;
      options.bucket_mb = kBucketMb;
      std::vector<distributed::ShardedParameter> trainable;
      for (const auto& item : params)
        if (item.value().requires_grad())
          trainable.push_back({item.key(), item.value(), item.key() != "2.bias"});
      sharded = std::make_unique<distributed::ShardedOptimizer>(*group, trainable, options);
    } else {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(std::vector<torch::Tensor>{params["0.weight"], params["2.weight"]},
                          std::make_unique<torch::optim::AdamWOptions>(
                              torch::optim::AdamWOptions(kLr).weight_decay(kDecay)));
      groups.emplace_back(std::vector<torch::Tensor>{params["2.bias"]},
                          std::make_unique<torch::optim::AdamWOptions>(
                              torch::optim::AdamWOptions(kLr).weight_decay(0)));
      reference =
          std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(kLr));
    }
    std::vector<double> norms;
    for (int step = 0; step < 3; ++step) {
      sharded ? sharded->zero_grad() : reference->zero_grad();
      auto [x, y] = make_batch(500 + step, 16);  // 2 micro-batches of 8 rows, split over the ranks
      for (int m = 0; m < 2; ++m) {
        const auto xm = shard(x, m, 2), ym = shard(y, m, 2);
        if (sharded) sharded->begin_micro_step(m == 1);
        auto out = mlp->forward(shard(xm, rank, world));
        (torch::mse_loss(out, shard(ym, rank, world), at::Reduction::Sum) / y.numel()).backward();
        if (sharded) sharded->end_micro_step(m == 1);
      }
      if (sharded) {
        norms.push_back(sharded->clip_grad_norm(kClip));
        sharded->step(kLr);
      } else {
        norms.push_back(torch::nn::utils::clip_grad_norm_(mlp->parameters(), kClip));
        reference->step();
      }
    }
    auto out = detached(mlp->parameters());
    out.push_back(torch::tensor(norms, torch::kFloat64));
    if (sharded) {
      const auto state = sharded->state_tensors();  // collective; rank 0 gets it
      for (const auto& [name, tensor] : state)
        if (name.rfind("2.weight.", 0) == 0) out.push_back(tensor);
    } else {
      auto& s = static_cast<torch::optim::AdamWParamState&>(
          *reference->state().at(params["2.weight"].unsafeGetTensorImpl()));
      out.push_back(s.exp_avg());
      out.push_back(s.exp_avg_sq());
      out.push_back(torch::tensor({s.step()}, torch::kLong));
    }
    return out;
  }
  if (scenario == "dead_peer") {
    distributed::barrier(group);
    if (rank == 1) std::raise(SIGKILL);  // dies without a word, mid-run
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto t = torch::ones({4});
    group->all_reduce_mean({t});
    return {t};
  }
  if (scenario == "share_after_long_work") {
    // Rank 0 works alone for twice the group's timeout (as during an evaluation), then shares
    // its result; the others wait through Group::share_from_main, then all meet in a barrier.
    const double group_timeout_s = std::stod(std::getenv("BIRECO_TEST_GROUP_TIMEOUT_S"));
    std::string result;
    if (rank == 0) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(static_cast<int64_t>(2000 * group_timeout_s)));
      result = "scores from rank 0";
    }
    result = group->share_from_main(result, std::chrono::seconds(60));
    distributed::barrier(group);
    return {torch::tensor(std::vector<int64_t>(result.begin(), result.end()))};
  }
  throw Error("dist_worker: unknown scenario '" + scenario + "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: dist_worker <scenario> <out-dir> [timeout_s]\n");
    return 2;
  }
  try {
    const std::string scenario = argv[1], out_dir = argv[2];
    config::DistConfig config;
    config.backend = "gloo";
    if (argc > 3) config.timeout_s = std::stod(argv[3]);
    const auto env = distributed::read_environment();
    torch::set_num_threads(1);
    auto group = distributed::init(config, env);
    const auto result = run(scenario, group.get(), env.rank, env.world_size);
    torch::save(result, out_dir + "/" + scenario + "_rank" + std::to_string(env.rank) + ".pt");
    std::fflush(stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
