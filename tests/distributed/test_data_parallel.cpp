// Two Gloo ranks on loopback (started through `bireco launch`) against single-process
// references: rendezvous, broadcast, bucketed gradient sync vs the one-by-one reference and
// the full-batch gradient, no_sync, all-gather with gradients, dead peers, two nodes.
#include <gtest/gtest.h>

#include <cstdlib>

#include "dist_test_support.h"
#include "tiny_mlp.h"

namespace bireco::test {
namespace {

using namespace bireco::test::dist;

std::vector<torch::Tensor> load_result(const TempDir& tmp, const std::string& scenario, int rank) {
  std::vector<torch::Tensor> tensors;
  torch::load(tensors, (tmp / (scenario + "_rank" + std::to_string(rank) + ".pt")).string());
  return tensors;
}

// Runs `scenario` on 2 local ranks (timeout 20 s each) and returns each rank's tensors.
std::vector<std::vector<torch::Tensor>> run_two_ranks(const TempDir& tmp, const std::string& scenario) {
  const auto r = run_timed(launch_command(2, dist_worker() + " " + scenario + " " + tmp.path().string() + " 20"));
  EXPECT_EQ(r.result.status, 0) << r.result.output;
  if (r.result.status != 0) return {};
  return {load_result(tmp, scenario, 0), load_result(tmp, scenario, 1)};
}

// The gradient of the mean loss over the whole batch in one process: what 2 ranks must agree on.
std::vector<torch::Tensor> full_batch_grads(const torch::Tensor& x, const torch::Tensor& y) {
  auto mlp = make_mlp(7);
  mlp_loss(mlp, x, y).backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : mlp->parameters()) grads.push_back(p.grad());
  return detached(grads);
}

void expect_same(const std::vector<torch::Tensor>& got, size_t from,
                 const std::vector<torch::Tensor>& want, double tolerance, const std::string& what) {
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& g = got.at(from + i);
    if (want[i].numel() == 0) {  // a frozen parameter's missing gradient
      EXPECT_EQ(g.numel(), 0) << what << " tensor " << i << " should have no gradient (frozen)";
      continue;
    }
    ASSERT_EQ(g.sizes(), want[i].sizes()) << what << " tensor " << i;
    const double diff = (g - want[i]).abs().max().item<double>();
    EXPECT_LE(diff, tolerance) << what << " tensor " << i << ": max difference " << diff;
  }
}

TEST(DistDataParallel, RendezvousGivesEveryRankItsPlace) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, "rendezvous");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0][0].equal(torch::tensor({0, 2})));
  EXPECT_TRUE(results[1][0].equal(torch::tensor({1, 2})));
}

TEST(DistDataParallel, BroadcastMakesEveryRankEqualRankZero) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, "broadcast");
  ASSERT_EQ(results.size(), 2u);
  const auto rank0_init = detached(make_mlp(100)->parameters());
  const auto rank1_init = detached(make_mlp(101)->parameters());
  ASSERT_FALSE(rank0_init[0].equal(rank1_init[0]));
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_EQ(results[rank].size(), rank0_init.size());
    for (size_t i = 0; i < rank0_init.size(); ++i) EXPECT_TRUE(results[rank][i].equal(rank0_init[i])) << rank << " " << i;
  }
}

TEST(DistDataParallel, BucketedSyncEqualsReferenceAndFullBatchGradient) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, "grad_sync");
  ASSERT_EQ(results.size(), 2u);
  auto [x, y] = make_batch(1, 8);
  const auto want = full_batch_grads(x, y);
  for (int rank = 0; rank < 2; ++rank) {
    const auto& got = results[rank];
    ASSERT_EQ(got.size(), 2 * want.size() + 1);
    expect_same(got, 0, want, 1e-6, "bucketed, rank " + std::to_string(rank));
    expect_same(got, want.size(), want, 1e-6, "reference, rank " + std::to_string(rank));
    // Bucketed and reference differ only in summation grouping: equal to float rounding.
    expect_same(got, 0, std::vector<torch::Tensor>(got.begin() + want.size(), got.end() - 1), 1e-7,
                "bucketed vs reference, rank " + std::to_string(rank));
    const auto counts = got.back();
    EXPECT_GT(counts[0].item<int64_t>(), 1) << "the test wants several buckets";
    EXPECT_EQ(counts[1].item<int64_t>(), counts[0].item<int64_t>()) << "one all-reduce per bucket";
  }
}

TEST(DistDataParallel, NoSyncSkipsCommunicationAndAccumulates) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, "no_sync");
  ASSERT_EQ(results.size(), 2u);
  auto [x, y] = make_batch(2, 8);
  const auto want_synced = full_batch_grads(x, y);
  const size_t n = want_synced.size();
  for (int rank = 0; rank < 2; ++rank) {
    const auto& got = results[rank];
    ASSERT_EQ(got.size(), 2 * n + 1);
    // After the no_sync micro-step: this rank's own gradient, untouched.
    const auto xs = shard(x, rank, 2), ys = shard(y, rank, 2);
    auto mlp = make_mlp(7);
    (mlp_loss(mlp, shard(xs, 0, 2), shard(ys, 0, 2)) / 2).backward();
    std::vector<torch::Tensor> local;
    for (const auto& p : mlp->parameters()) local.push_back(p.grad());
    expect_same(got, 0, detached(local), 0, "no_sync micro-step, rank " + std::to_string(rank));
    expect_same(got, n, want_synced, 1e-6, "accumulated + synced, rank " + std::to_string(rank));
    EXPECT_EQ(got.back()[0].item<int64_t>(), 0) << "no_sync launched an all-reduce";
    EXPECT_GT(got.back()[1].item<int64_t>(), 0);
  }
}

// Gradient checkpointing: each use of a layer is back-propagated on its own, so a parameter
// used twice gets two contributions per backward. Each must be reduced after its last one:
// the synced gradient equals the reference on the same local gradients in every step. Step 0
// only counts contributions; step 1 sends every bucket during backward (overlap kept); in
// step 2 a third use arrives after the buckets went out, so every rank reduces again in
// finish(); step 3, counted anew, overlaps again.
TEST(DistDataParallel, CheckpointedReuseIsReducedAfterTheLastContribution) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, "checkpointed_reuse");
  ASSERT_EQ(results.size(), 2u);
  auto mlp = make_mlp(7);
  const size_t n = mlp->parameters().size();
  for (int rank = 0; rank < 2; ++rank) {
    const auto& got = results[rank];
    ASSERT_EQ(got.size(), 4 * (2 * n + 1));
    for (int step = 0; step < 4; ++step) {
      const size_t at = step * (2 * n + 1);
      const std::vector<torch::Tensor> reference(got.begin() + at + n, got.begin() + at + 2 * n);
      const std::string where = "step " + std::to_string(step) + ", rank " + std::to_string(rank);
      expect_same(got, at, reference, 1e-7, where);
      const auto counts = got[at + 2 * n];
      const int64_t buckets = counts[2].item<int64_t>();
      const int64_t want_in_backward[4] = {0, buckets, buckets, buckets};
      const int64_t want_in_finish[4] = {buckets, 0, buckets, 0};
      EXPECT_EQ(counts[0].item<int64_t>(), want_in_backward[step]) << where << ": launched in backward";
      EXPECT_EQ(counts[1].item<int64_t>(), want_in_finish[step]) << where << ": launched in finish()";
    }
  }
  // The ranks trained on different rows; after the reduction they hold the same gradient.
  for (size_t i = 0; i < n; ++i) EXPECT_TRUE(results[0][i].equal(results[1][i])) << "tensor " << i;
}

TEST(DistDataParallel, CollectiveOnTheWrongDeviceIsAnErrorNamingIt) {
  TempDir tmp;
  const auto r = run_timed(launch_command(2, dist_worker() + " wrong_device " + tmp.path().string() + " 20"));
  EXPECT_NE(r.result.status, 0);
  EXPECT_NE(r.result.output.find("error: dist: all_reduce of tensor 0 got a tensor on meta, but the gloo group of "
                                 "rank 0 of 2"),
            std::string::npos)
      << r.result.output;
  EXPECT_NE(r.result.output.find("works on cpu"), std::string::npos) << r.result.output;
  EXPECT_LT(r.seconds, 15) << "the check must fire before any communication";
}

TEST(DistDataParallel, AllGatherWithGradMatchesOneProcess) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, "all_gather");
  ASSERT_EQ(results.size(), 2u);
  // One process: both ranks' rows as leaves, the sum of both ranks' losses.
  auto x0 = gather_input(0).requires_grad_(), x1 = gather_input(1).requires_grad_();
  const auto gathered = torch::cat({x0, x1}, 0);
  (gather_loss(gathered, 0, 2) + gather_loss(gathered, 1, 2)).backward();
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_TRUE(results[rank][0].equal(gathered.detach())) << "forward, rank " << rank;
    const auto& want = rank == 0 ? x0.grad() : x1.grad();
    const double diff = (results[rank][1] - want).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6 * want.abs().max().item<double>()) << "backward, rank " << rank << ": max difference " << diff;
  }
}

TEST(DistDataParallel, TwoRanksTrainLikeOneProcess) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, "train");
  ASSERT_EQ(results.size(), 2u);
  const auto one = run_timed("env -u RANK -u WORLD_SIZE " + dist_worker() + " train " + tmp.path().string());
  ASSERT_EQ(one.result.status, 0) << one.result.output;
  const auto single = load_result(tmp, "train", 0);  // overwrote rank 0's file last
  for (int rank = 0; rank < 2; ++rank) expect_same(results[rank], 0, single, 1e-6, "rank " + std::to_string(rank));
}

// ZeRO-1 and ZeRO-2 against torch::optim::AdamW in one process: 3 steps of 2 micro-steps with
// weight decay on some parameters and active clipping; ~100-byte buckets split the MLP's
// parameters between the ranks' shards. The weights, the global gradient norms and the
// gathered moments (rank 0) equal the reference.
void expect_sharded_adamw_equals_one_process(const std::string& scenario) {
  TempDir tmp;
  const auto results = run_two_ranks(tmp, scenario);
  ASSERT_EQ(results.size(), 2u);
  const auto one = run_timed("env -u RANK -u WORLD_SIZE " + dist_worker() + " " + scenario + " " +
                             tmp.path().string());
  ASSERT_EQ(one.result.status, 0) << one.result.output;
  const auto single = load_result(tmp, scenario, 0);  // overwrote rank 0's file last
  ASSERT_EQ(single.size(), 8u);  // 4 parameters, the norms, exp_avg, exp_avg_sq, step
  EXPECT_TRUE((single[4] > 0.5).all().item<bool>()) << "clipping was active: " << single[4];
  double worst = 0;
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_EQ(results[rank].size(), rank == 0 ? 8u : 5u) << "rank " << rank;
    for (size_t i = 0; i < results[rank].size(); ++i) {
      ASSERT_EQ(results[rank][i].sizes(), single[i].sizes()) << "rank " << rank << " tensor " << i;
      const double diff = (results[rank][i].to(torch::kFloat64) - single[i].to(torch::kFloat64))
                              .abs()
                              .max()
                              .item<double>();
      EXPECT_LE(diff, 1e-6) << "rank " << rank << " tensor " << i;
      worst = std::max(worst, diff);
    }
  }
  // The weights moved (at lr 0.05, by far more than the tolerance).
  const auto start = detached(make_mlp(7)->parameters());
  EXPECT_GT((single[2] - start[2]).abs().max().item<double>(), 1e-2);
  std::printf("%s: max |2 ranks - 1 process| %.3g\n", scenario.c_str(), worst);
}

TEST(DistDataParallel, ShardedOptimizerEqualsAdamWInOneProcess) {
  expect_sharded_adamw_equals_one_process("sharded_adamw_optimizer");
}

TEST(DistDataParallel, ShardedGradientsEqualAdamWInOneProcess) {
  expect_sharded_adamw_equals_one_process("sharded_adamw_gradients");
}

TEST(DistDataParallel, DeadPeerIsAnErrorWithinTheTimeout) {
  // Started by hand (not `launch`, which would stop rank 0 as soon as rank 1 dies).
  TempDir tmp;
  const std::string common = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " ";
  const std::string worker = dist_worker() + " dead_peer " + tmp.path().string() + " 5";
  const auto r = run_timed("/bin/sh -c '" + common + "RANK=1 " + worker + " & " + common + "RANK=0 " + worker +
                           "; echo rank0-status=$?; wait'");
  EXPECT_LT(r.seconds, 20) << r.result.output;
  EXPECT_NE(r.result.output.find("rank0-status=1"), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("error: dist: all_reduce of tensor 0 failed on rank 0 of 2"), std::string::npos)
      << r.result.output;
}

// Evaluation during training: rank 0 alone for longer than dist.timeout_s while the others wait
// (a barrier there would fail after the group's 3 s).
TEST(DistDataParallel, ShareFromMainWaitsLongerThanTheGroupTimeout) {
  TempDir tmp;
  const auto r = run_timed(
      "env BIRECO_TEST_GROUP_TIMEOUT_S=3 " +
      launch_command(2, dist_worker() + " share_after_long_work " + tmp.path().string() + " 3"));
  ASSERT_EQ(r.result.status, 0) << r.result.output;
  EXPECT_GT(r.seconds, 6) << "rank 0 did not work for twice the group timeout";
  const std::string expected = "scores from rank 0";
  for (int rank = 0; rank < 2; ++rank) {
    const auto t = load_result(tmp, "share_after_long_work", rank).at(0);
    EXPECT_EQ(std::string(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()), expected)
        << "rank " << rank;
  }
}

TEST(DistDataParallel, MissingPeerIsAnErrorNamingIt) {
  TempDir tmp;
  const auto r = run_timed("/bin/sh -c 'RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                           std::to_string(free_port()) + " " + dist_worker() + " rendezvous " +
                           tmp.path().string() + " 3'");
  EXPECT_EQ(r.result.status, 1) << r.result.output;
  EXPECT_LT(r.seconds, 20) << r.result.output;
  EXPECT_NE(r.result.output.find("timed out after 3 s on rank 0 of 2 (rendezvous, timeout 3 s): rank(s) 1 never arrived"),
            std::string::npos)
      << r.result.output;
}

TEST(DistDataParallel, UnreachableRankZeroIsAnError) {
  TempDir tmp;
  const auto r = run_timed("/bin/sh -c 'RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                           std::to_string(free_port()) + " " + dist_worker() + " rendezvous " +
                           tmp.path().string() + " 3'");
  EXPECT_EQ(r.result.status, 1) << r.result.output;
  EXPECT_LT(r.seconds, 20) << r.result.output;
  EXPECT_NE(r.result.output.find("could not reach rank 0's TCPStore at 127.0.0.1:"), std::string::npos)
      << r.result.output;
}

// Two network namespaces joined by a veth pair play two nodes: each runs `bireco launch
// --nnodes 2 --node-rank R --nproc-per-node 1` of the training self-test. Needs root and `ip`.
class NetworkNamespaces {
 public:
  NetworkNamespaces() {
    const std::string tag = std::to_string(::getpid() % 100000);
    names_ = {"bireco-a-" + tag, "bireco-b-" + tag};
    // 10.x addresses live only inside these namespaces.
    const int subnet = 100 + ::getpid() % 150;
    addresses_ = {"10.231." + std::to_string(subnet) + ".1", "10.231." + std::to_string(subnet) + ".2"};
    const std::string a = names_[0], b = names_[1];
    const std::string setup =
        "ip netns add " + a + " && ip netns add " + b + " && ip link add va" + tag +
        " netns " + a + " type veth peer name vb" + tag + " netns " + b + " && ip -n " + a +
        " addr add " + addresses_[0] + "/24 dev va" + tag + " && ip -n " + b + " addr add " +
        addresses_[1] + "/24 dev vb" + tag + " && ip -n " + a + " link set va" + tag + " up && ip -n " +
        b + " link set vb" + tag + " up && ip -n " + a + " link set lo up && ip -n " + b + " link set lo up";
    const auto r = run_command(setup);
    created_ = true;
    ok_ = r.status == 0;
    error_ = r.output;
  }
  ~NetworkNamespaces() {
    if (created_) run_command("ip netns del " + names_[0] + "; ip netns del " + names_[1]);
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& name(int i) const { return names_[i]; }
  const std::string& address(int i) const { return addresses_[i]; }

 private:
  std::vector<std::string> names_, addresses_;
  bool created_ = false, ok_ = false;
  std::string error_;
};

TEST(DistDataParallel, TwoNodesOverVethTrainLikeOneProcess) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
  if (run_command("command -v ip").status != 0) GTEST_SKIP() << "needs the `ip` tool (iproute2)";
  NetworkNamespaces net;
  if (!net.ok()) GTEST_SKIP() << "cannot create network namespaces here: " << net.error();
  TempDir tmp;
  const std::string port = std::to_string(20000 + ::getpid() % 20000);
  auto node = [&](int r) {
    return "ip netns exec " + net.name(r) + " " + bireco_binary().string() +
           " launch --nnodes 2 --node-rank " + std::to_string(r) + " --nproc-per-node 1 --master-addr " +
           net.address(0) + " --master-port " + port + " -- " + dist_worker() + " train " +
           tmp.path().string() + " 20";
  };
  const auto r = run_timed("/bin/sh -c '" + node(1) + " & " + node(0) + "; a=$?; wait $!; b=$?; echo node-status=$a,$b'");
  ASSERT_NE(r.result.output.find("node-status=0,0"), std::string::npos) << r.result.output;
  const auto rank0 = load_result(tmp, "train", 0), rank1 = load_result(tmp, "train", 1);
  const auto one = run_timed("env -u RANK -u WORLD_SIZE " + dist_worker() + " train " + tmp.path().string());
  ASSERT_EQ(one.result.status, 0) << one.result.output;
  const auto single = load_result(tmp, "train", 0);
  expect_same(rank0, 0, single, 1e-6, "node 0");
  expect_same(rank1, 0, single, 1e-6, "node 1");
}

}  // namespace
}  // namespace bireco::test
