// `bireco launch`: starts this node's worker processes with torchrun-style variables,
// prefixes their output with their rank, forwards signals and reports the first failure.
#pragma once

#include <string>
#include <vector>

namespace bireco::distributed {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // A bireco command line ("train --config x") run by this same executable; or, when the
  // first word contains a '/', that program with its arguments (tests, tools).
  std::vector<std::string> command;
  // After a failure (or SIGINT), how long the others get between SIGTERM and SIGKILL.
  double grace_s = 10;
};

// Runs the workers to completion: RANK = node_rank * nproc_per_node + local rank,
// WORLD_SIZE = nnodes * nproc_per_node, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT (and OMP_NUM_THREADS=1 when several workers share the node and it is unset, as
// torchrun does). SIGINT, SIGTERM and SIGUSR1 are forwarded to every worker (bireco workers
// stop at the end of the step with a checkpoint, train/stop_signal.h). Returns 0 when
// all exit 0, else the first failure's status (128 + signal for a killed worker) after
// stopping the others. Invalid options are a bireco::Error naming the option.
int launch(const LaunchOptions& options);

}  // namespace bireco::distributed
