// A process group for data parallelism: rank, world and the few collectives the trainer needs,
// over c10d (NCCL with CUDA, Gloo on CPU). A one-process run never makes one: init() returns
// nullptr and the helpers below (is_main, barrier) treat nullptr as "the only rank".
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bireco/config/stage_config.h"
#include "bireco/distributed/environment.h"

namespace bireco::distributed {

class Group {
 public:
  struct Impl;  // c10d objects; src/distributed/group_impl.h
  explicit Group(std::unique_ptr<Impl> impl);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const;
  int world_size() const;
  int local_rank() const;
  bool is_main() const { return rank() == 0; }
  const std::string& backend() const;  // "gloo" | "nccl"
  torch::Device device() const;        // cpu (gloo) or cuda:LOCAL_RANK (nccl)

  // Every rank waits here until all have arrived (or the timeout names the failure).
  void barrier();
  // Overwrites every tensor with rank `root`'s values (call under torch::NoGradGuard or on
  // .data(); parameters keep requires_grad).
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  // Averages each tensor over the ranks, in place, one collective per tensor.
  void all_reduce_mean(const std::vector<torch::Tensor>& tensors);
  // [B, ...] from every rank -> [world*B, ...] in rank order; every rank passes the same
  // shape. No gradient: see all_gather.h for the differentiable one.
  torch::Tensor all_gather(const torch::Tensor& x);
  // Rank 0's `value` on every rank (the others' argument is ignored). Not a collective: it
  // travels through the rendezvous store, and the other ranks wait up to `timeout` rather than
  // the group's, so rank 0 may work alone (an evaluation) for longer than dist.timeout_s. A rank
  // 0 that dies meanwhile is an Error at once (its store goes with it). Every rank calls it in
  // the same order.
  std::string share_from_main(const std::string& value, std::chrono::milliseconds timeout);

  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Joins the run `env` describes: rendezvous through a TCPStore served by rank 0 at
// MASTER_ADDR:MASTER_PORT, then a Gloo or NCCL group (config.backend: auto = NCCL when CUDA
// and NCCL are built in, else Gloo). Every wait is bounded by config.timeout_s; a peer that
// never arrives or dies is a bireco::Error naming the operation. world_size 1 -> nullptr.
std::unique_ptr<Group> init(const config::DistConfig& config, const Environment& env);

// model.device for this process, which sees `visible_gpus` CUDA devices (after
// CUDA_VISIBLE_DEVICES; 0 without a GPU or driver). In a multi-process run `cuda`, and `auto`
// where a GPU is visible, mean cuda:LOCAL_RANK, the GPU torchrun and srun give each local
// rank; `cpu` and an explicit `cuda:N` stay as written, and so does everything in a
// single-process run. A LOCAL_RANK with no GPU of its own is a bireco::Error naming it.
std::string rank_device(const std::string& configured, const Environment& env, int visible_gpus);
// The same for the GPUs this process sees.
std::string rank_device(const std::string& configured, const Environment& env);

// Makes `device` the current CUDA device (before any CUDA work, so that nothing lands on
// cuda:0 by default); nothing for the CPU.
void use_device(const torch::Device& device);

// Rank 0 (or the only process) writes checkpoints and metrics.
inline bool is_main(const Group* group) { return group == nullptr || group->is_main(); }
inline void barrier(Group* group) {
  if (group != nullptr) group->barrier();
}

// Copies rank 0's parameter values to every rank (the start of data-parallel training).
void broadcast_parameters(Group& group, const std::vector<torch::Tensor>& parameters);

}  // namespace bireco::distributed
