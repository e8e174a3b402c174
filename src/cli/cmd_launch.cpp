// `bireco launch`: start N local training processes with torchrun-style variables
#include "bireco/cli/command.h"
#include "bireco/distributed/launch.h"

namespace bireco::cli {

Command add_launch(CLI::App& app) {
  auto o = std::make_shared<distributed::LaunchOptions>();
  auto* sub = app.add_subcommand("launch", "start N local training processes with torchrun-style variables");
  sub->add_option("--nproc-per-node", o->nproc_per_node, "processes on this node")
      ->capture_default_str();
  sub->add_option("--nnodes", o->nnodes, "number of nodes")->capture_default_str();
  sub->add_option("--node-rank", o->node_rank, "this node's rank")->capture_default_str();
  sub->add_option("--master-addr", o->master_addr, "rank 0's address")->capture_default_str();
  sub->add_option("--master-port", o->master_port, "rank 0's port")->capture_default_str();
  sub->add_option("--grace-period", o->grace_s,
                  "seconds between SIGTERM and SIGKILL when a worker failed or on Ctrl-C (a SIGTERM/SIGUSR1 sent to launch is forwarded with no SIGKILL: the workers save a checkpoint first)")
      ->capture_default_str();
  sub->add_option("command", o->command,
                  "bireco arguments after --, e.g. -- train --config x (or a program path)")
      ->required();
  return {sub, [o]() -> int { return distributed::launch(*o); }};
}

}  // namespace bireco::cli
