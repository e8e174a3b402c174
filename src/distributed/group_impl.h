// The c10d objects behind distributed::Group, shared by the distributed/ sources only.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <string>

#include "bireco/distributed/group.h"
#include "bireco/util/compat.h"

namespace bireco::distributed {

struct Group::Impl {
  Environment env;
  std::string backend;
  torch::Device device = torch::kCPU;
  std::chrono::milliseconds timeout{600000};
  c10::intrusive_ptr<c10d::Store> store;
  // ProcessGroupGloo or ProcessGroupNCCL: 2.x splits ProcessGroup into a dispatching
  // ProcessGroup and per-backend Backends, which own the collectives.
  c10::intrusive_ptr<c10d::Backend> collectives;
  int64_t shared = 0;  // Group::share_from_main calls so far: each gets its own store key

  // Waits for `work`; a failure (dead peer, timeout) becomes a bireco::Error naming `what`.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const;
  // "rank 1 of 2 (gloo, timeout 5 s)": the context every error message carries.
  std::string where() const;
  // A bireco::Error naming `what` unless `tensor` lives on the group's device (NCCL takes
  // only tensors on this rank's GPU, Gloo only CPU ones here).
  void check_device(const torch::Tensor& tensor, const std::string& what) const;
};

}  // namespace bireco::distributed
