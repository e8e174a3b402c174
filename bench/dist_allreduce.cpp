// How much of a data-parallel step is gradient communication, at 1, 2 and 4 CPU (Gloo) ranks
// on this machine, and what overlapping buckets with backward gains over the one-by-one
// reference. The ranks are this executable started again through distributed::launch.
//   bench_dist_allreduce [--hidden 1024] [--layers 3] [--batch 32] [--steps 10] [--bucket-mb 4]
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bireco/distributed/gradient_sync.h"
#include "bireco/distributed/group.h"
#include "bireco/distributed/launch.h"
#include "bireco/util/compat.h"

using namespace bireco;

namespace {

struct Args {
  int64_t hidden = 1024, layers = 3, batch = 32, steps = 10;
  double bucket_mb = 4;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const double v = std::atof(argv[i + 1]);
    if (key == "--hidden") a.hidden = static_cast<int64_t>(v);
    else if (key == "--layers") a.layers = static_cast<int64_t>(v);
    else if (key == "--batch") a.batch = static_cast<int64_t>(v);
    else if (key == "--steps") a.steps = static_cast<int64_t>(v);
    else if (key == "--bucket-mb") a.bucket_mb = v;
  }
  return a;
}

// Milliseconds per step of forward + backward (+ the given sync), after one warm-up step.
template <class Sync>
double time_steps(torch::nn::Sequential& mlp, const Args& a, distributed::Group* group, Sync&& sync) {
  auto x = torch::randn({a.batch, a.hidden});
  double total = 0;
  for (int64_t step = 0; step <= a.steps; ++step) {
    if (group) group->barrier();
    const auto start = std::chrono::steady_clock::now();
    mlp->zero_grad();
    mlp->forward(x).pow(2).mean().backward();
    sync();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (step > 0) total += ms;
  }
  return total / a.steps;
}

int worker(const Args& a) {
  torch::set_num_threads(1);
  const auto env = distributed::read_environment();
  config::DistConfig config;
  config.backend = "gloo";
  config.timeout_s = 120;
  auto group = distributed::init(config, env);
  torch::manual_seed(0);
  torch::nn::Sequential mlp;
  for (int64_t l = 0; l < a.layers; ++l) {
    mlp->push_back(torch::nn::Linear(a.hidden, a.hidden));
    mlp->push_back(torch::nn::Functional([](const torch::Tensor& t) { return torch::relu(t); }));
  }
  int64_t params = 0;
  for (const auto& p : mlp->parameters()) params += p.numel();
  const double local = time_steps(mlp, a, group.get(), [] {});
  double bucketed = local, reference = local;
  if (group) {
    distributed::broadcast_parameters(*group, mlp->parameters());
    {
      distributed::GradientSync sync(*group, mlp->parameters(), a.bucket_mb);
      bucketed = time_steps(mlp, a, group.get(), [&] { sync.finish(); });
    }
    reference = time_steps(mlp, a, group.get(),
                           [&] { distributed::sync_gradients_reference(*group, mlp->parameters()); });
  }
  if (env.rank == 0) {
    std::printf("| %5d | %8.2f M | %9.1f | %12.1f | %12.1f | %9.0f %% | %10.2fx |\n", env.world_size,
                params / 1e6, local, bucketed, reference, 100.0 * (bucketed - local) / bucketed,
                reference / bucketed);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (std::getenv("RANK") != nullptr) return worker(a);
  utsname machine{};
  ::uname(&machine);
  std::printf("bench_dist_allreduce: LibTorch %s, %s %s, %ld cores, Gloo on loopback, 1 thread/rank\n",
              compat::torch_version().c_str(), machine.nodename, machine.machine, ::sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\nMLP %ld x Linear(%ld, %ld), batch %ld per rank, %ld steps, buckets %.1f MiB\n", a.layers,
              a.hidden, a.hidden, a.batch, a.steps, a.bucket_mb);
  std::printf("| ranks | params     | local ms  | bucketed ms  | one-by-one ms| comm share | overlap gain|\n");
  std::fflush(stdout);
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  self[n] = '\0';
  for (int world : {1, 2, 4}) {
    distributed::LaunchOptions o;
    o.nproc_per_node = world;
    o.master_port = 29700 + world;
    o.command = {self};
    for (int i = 1; i < argc; ++i) o.command.push_back(argv[i]);
    if (const int status = distributed::launch(o); status != 0) return status;
  }
  std::printf("comm share = (bucketed - local) / bucketed; overlap gain = one-by-one / bucketed\n");
  return 0;
}
