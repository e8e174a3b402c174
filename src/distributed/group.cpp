// Rendezvous (TCPStore), the Gloo / NCCL group, and the plain collectives.
#include "bireco/distributed/group.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

// The one file that includes gloo's headers (USE_C10D_GLOO and USE_C10D_NCCL come from
// cmake/torch_backends.cmake, which says why Debian's gloo headers are safe here).
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <torch/cuda.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "bireco/util/error.h"
#include "bireco/util/log.h"
#include "group_impl.h"

namespace bireco::distributed {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string seconds(std::chrono::milliseconds t) {
  const double s = t.count() / 1000.0;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g s", s);
  return buffer;
}

// The local IPv4 address this host uses to reach `host`: a UDP socket "connected" there sends
// nothing but makes the kernel pick the route and source address. Gloo listens on it, so
// ranks on other nodes (or in other network namespaces) can reach us; hostname-based
// defaults often resolve to 127.0.1.1 instead. GLOO_SOCKET_IFNAME overrides this, as in torch.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found) {
    throw Error("dist: cannot resolve MASTER_ADDR '" + host + "'");
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in local{};
  socklen_t length = sizeof local;
  const bool ok = fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0;
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(found);
  if (!ok) throw Error("dist: no route from this host to MASTER_ADDR '" + host + "'");
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &local.sin_addr, text, sizeof text);
  return text;
}

std::string arrival_key(int rank) { return "bireco/arrived/" + std::to_string(rank); }

using Clock = std::chrono::steady_clock;

// When the next "still waiting" line is due: 1, 2, 4, ... s after the start, then every 60 s,
// so a short wait says so early and a long one does not flood the log.
std::chrono::milliseconds next_report(std::chrono::milliseconds last) {
  using std::chrono::milliseconds;
  return last.count() == 0 ? milliseconds(1000) : std::min(last * 2, last + milliseconds(60000));
}

std::string whole_seconds(std::chrono::milliseconds t) {
  return std::to_string(t.count() / 1000) + " s";
}

// The ranks whose arrival key is not in the store yet ("1, 3"); throws when the store itself
// is gone (rank 0 died). One request per rank.
std::string missing_ranks(Group::Impl& g) {
  std::string missing;
  for (int r = 0; r < g.env.world_size; ++r)
    if (!g.store->check({arrival_key(r)}))
      missing += (missing.empty() ? "" : ", ") + std::to_string(r);
  return missing;
}

// Whether something accepts TCP connections at host:port now (a connect with a 200 ms limit,
// closed at once).
bool accepts_connections(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    throw Error("dist: cannot resolve MASTER_ADDR '" + host + "'");
  bool open = false;
  for (addrinfo* a = found; a != nullptr && !open; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      open = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int error = 0;
      socklen_t length = sizeof error;
      open = ::poll(&p, 1, 200) == 1 &&
             ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return open;
}

// Every rank announces itself in the store and waits for all others. While it waits, a line
// says for whom and for how long (next_report): rank 0's TCPStore, or the ranks still missing
// (their count when there are more than 64 ranks, where listing them from every rank would
// cost ranks^2 requests); on timeout the message lists the ranks that never came. A stop
// signal here ends the process at once (train/stop_signal.h: nothing to save yet).
void rendezvous(Group::Impl& g) {
  const Environment& env = g.env;
  const std::string address = env.master_addr + ":" + std::to_string(env.master_port);
  const std::string who =
      "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  const auto start = Clock::now();
  auto waited = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  };
  auto of_timeout = [&] {
    return " (waited " + whole_seconds(waited()) + " of " + seconds(g.timeout) + ")";
  };
  // Ranks other than 0 log only warnings by default (util/log.h), and a rank 0 that never
  // comes is just what they must be able to say.
  auto waiting = [&](const std::string& line) {
    env.rank == 0 ? log::info(line) : log::warn(line);
  };
  std::chrono::milliseconds report = next_report({});
  auto report_due = [&] {
    if (waited() < report) return false;
    while (report <= waited()) report = next_report(report);
    return true;
  };
  log::info("dist: ", who, " joins the rendezvous at ", address, " (timeout ", seconds(g.timeout),
            ")");
  // The other ranks first wait for rank 0's port with plain probes: TCPStore's own connect
  // retries with a growing back-off, logging each failure, and cannot say how long it waited.
  if (env.rank != 0) {
    while (!accepts_connections(env.master_addr, env.master_port)) {
      if (waited() >= g.timeout)
        throw Error("dist: rendezvous: could not reach rank 0's TCPStore at " + address +
                    " within " + seconds(g.timeout) + " on " + g.where() +
                    ": nothing accepts connections there");
      if (report_due())
        waiting("dist: " + who + " waiting for rank 0's TCPStore at " + address + of_timeout());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.waitWorkers = false;  // we wait ourselves below, to name who is missing
  options.timeout = std::max(std::chrono::milliseconds(1000), g.timeout - waited());
  try {
    g.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  } catch (const std::exception& e) {
    throw Error("dist: rendezvous: " +
                std::string(env.rank == 0 ? "rank 0 could not serve the TCPStore at "
                                          : "could not reach rank 0's TCPStore at ") +
                address + " within " + seconds(g.timeout) + " on " + g.where() + ": " +
                first_line(e.what()));
  }
  g.store->setTimeout(g.timeout);
  g.store->set(arrival_key(env.rank), std::vector<uint8_t>{1});
  // Polled (10 ms doubling to 200 ms): a store wait() that times out to report would log c10d
  // warnings each time.
  const std::string arrivals = "bireco/arrivals";
  auto pause = std::chrono::milliseconds(10);
  try {
    for (int64_t arrived = g.store->add(arrivals, 1); arrived < env.world_size;
         arrived = g.store->add(arrivals, 0)) {
      if (waited() >= g.timeout) {
        const std::string missing = missing_ranks(g);
        throw Error("dist: rendezvous at " + address + " timed out after " + seconds(g.timeout) +
                    " on " + g.where() + ": rank(s) " + (missing.empty() ? "?" : missing) +
                    " never arrived");
      }
      if (report_due()) {
        const std::string whom = env.rank == 0 || env.world_size <= 64
                                     ? "rank(s) " + missing_ranks(g)
                                     : std::to_string(env.world_size - arrived) + " of " +
                                           std::to_string(env.world_size) + " ranks";
        waiting("dist: " + who + " waiting at " + address + " for " + whom + of_timeout());
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(200));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("dist: rendezvous at " + address + " on " + g.where() +
                ": lost rank 0's TCPStore (" + first_line(e.what()) + ")");
  }
}

bool use_nccl(const config::DistConfig& config) {
  if (config.backend == "gloo") return false;
  if (config.backend == "nccl") {
    if (!compat::kHasNccl || !compat::cuda_available()) {
      throw Error("dist.backend: 'nccl' needs CUDA and a bireco built with NCCL "
                  "(USE_C10D_NCCL); use 'gloo' or 'auto'");
    }
    return true;
  }
  if (config.backend == "auto") return compat::kHasNccl && compat::cuda_available();
  throw Error("dist.backend: unknown backend '" + config.backend + "' (expected auto, nccl or gloo)");
}

}  // namespace

void Group::Impl::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const {
  try {
    work->wait(timeout);
  } catch (const std::exception& e) {
    throw Error("dist: " + what + " failed on " + where() +
                ": a peer died or stopped answering (" + first_line(e.what()) + ")");
  }
}

std::string Group::Impl::where() const {
  return "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " (" +
         (backend.empty() ? "rendezvous" : backend) + ", timeout " + seconds(timeout) + ")";
}

void Group::Impl::check_device(const torch::Tensor& tensor, const std::string& what) const {
  if (tensor.device() == device) return;
  throw Error("dist: " + what + " got a tensor on " + tensor.device().str() + ", but the " + backend +
              " group of " + where() + " works on " + device.str());
}

Group::Group(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Group::~Group() = default;

int Group::rank() const { return impl_->env.rank; }
int Group::world_size() const { return impl_->env.world_size; }
int Group::local_rank() const { return impl_->env.local_rank; }
const std::string& Group::backend() const { return impl_->backend; }
torch::Device Group::device() const { return impl_->device; }

void Group::barrier() { impl_->wait(impl_->collectives->barrier(), "barrier"); }

void Group::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string what = "broadcast of tensor " + std::to_string(i) + " from rank " + std::to_string(root);
    impl_->check_device(tensors[i], what);
    std::vector<at::Tensor> one = {tensors[i]};
    impl_->wait(impl_->collectives->broadcast(one, options), what);
  }
}

void Group::all_reduce_mean(const std::vector<torch::Tensor>& tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string what = "all_reduce of tensor " + std::to_string(i);
    impl_->check_device(tensors[i], what);
    std::vector<at::Tensor> one = {tensors[i]};
    impl_->wait(impl_->collectives->allreduce(one), what);
    tensors[i].div_(world_size());
  }
}

torch::Tensor Group::all_gather(const torch::Tensor& x) {
  impl_->check_device(x, "all_gather");
  std::vector<at::Tensor> input = {x.contiguous()};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int r = 0; r < world_size(); ++r) output[0].push_back(torch::empty_like(input[0]));
  impl_->wait(impl_->collectives->allgather(output, input), "all_gather");
  return torch::cat(output[0], 0);
}

std::string Group::share_from_main(const std::string& value, std::chrono::milliseconds timeout) {
  const std::string key = "bireco/shared/" + std::to_string(impl_->shared++);
  if (is_main()) {
    impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    return value;
  }
  try {
    impl_->store->wait({key}, timeout);
    const std::vector<uint8_t> bytes = impl_->store->get(key);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw Error("dist: waiting for rank 0 (up to " + seconds(timeout) + ") failed on " +
                impl_->where() + ": rank 0 died or took longer (" + first_line(e.what()) + ")");
  }
}

std::string rank_device(const std::string& configured, const Environment& env, int visible_gpus) {
  if (!env.distributed()) return configured;
  const bool cuda = configured == "cuda" || (configured == "auto" && visible_gpus > 0);
  if (!cuda) return configured;
  // Without any GPU, `cuda` goes on to model.device's own error (no CUDA device here).
  if (visible_gpus > 0 && env.local_rank >= visible_gpus) {
    throw Error("model.device: '" + configured + "' gives each local rank its own GPU, but LOCAL_RANK=" +
                std::to_string(env.local_rank) + " and this process sees " + std::to_string(visible_gpus) +
                " GPU(s) (CUDA_VISIBLE_DEVICES): start at most " + std::to_string(visible_gpus) +
                " processes per node, or set model.device to cuda:N or cpu");
  }
  return "cuda:" + std::to_string(env.local_rank);
}

std::string rank_device(const std::string& configured, const Environment& env) {
  const int visible = compat::cuda_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  return rank_device(configured, env, visible);
}

void use_device(const torch::Device& device) {
#ifdef USE_C10D_NCCL
  if (device.is_cuda()) c10::cuda::set_device(device.has_index() ? device.index() : 0);
#else
  (void)device;
#endif
}

void broadcast_parameters(Group& group, const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  group.broadcast(parameters, 0);
}

std::unique_ptr<Group> init(const config::DistConfig& config, const Environment& env) {
  if (!env.distributed()) return nullptr;
  if (!(config.timeout_s > 0)) throw Error("dist.timeout_s: must be positive");
  auto impl = std::make_unique<Group::Impl>();
  impl->env = env;
  impl->timeout = std::chrono::milliseconds(static_cast<int64_t>(config.timeout_s * 1000));
  const bool nccl = use_nccl(config);
  rendezvous(*impl);
  impl->backend = nccl ? "nccl" : "gloo";
  try {
    if (nccl) {
#if BIRECO_HAS_NCCL
      impl->device = torch::Device(torch::kCUDA, env.local_rank);
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = impl->timeout;
      impl->collectives =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, options);
#endif
    } else {
      auto options = c10d::ProcessGroupGloo::Options::create(impl->timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
            local_address_towards(env.master_addr, env.master_port)));
      }
      impl->collectives =
          c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("dist: creating the " + impl->backend + " group failed on " + impl->where() + ": " +
                first_line(e.what()));
  }
  return std::make_unique<Group>(std::move(impl));
}

}  // namespace bireco::distributed
