// Where this process sits in a distributed run, read from torchrun's or SLURM's variables.
// Pure: read_environment(map) touches neither the network nor c10d, so it is tested alone.
#pragma once

#include <map>
#include <string>

namespace bireco::distributed {

struct Environment {
  int rank = 0;              // global rank, 0..world_size-1
  int world_size = 1;        // 1: no distributed run at all (no c10d object is ever made)
  int local_rank = 0;        // rank on this node = the GPU this process uses
  int local_world_size = 1;  // processes on this node
  std::string master_addr = "127.0.0.1";  // rank 0's host (its TCPStore server)
  int master_port = 29500;                // torchrun's default
  std::string source = "none";            // "torchrun" | "slurm" | "none"
  // Why variables that looked like a launcher's were not used (logged once by the trainer);
  // empty when none were ignored.
  std::string note;

  bool distributed() const { return world_size > 1; }
};

// From the process environment (see the map overload for the rules).
Environment read_environment();

// From `vars` (name -> value), first match wins:
// 1. torchrun / `bireco launch`: RANK and WORLD_SIZE (both or neither), LOCAL_RANK
//    (default RANK), LOCAL_WORLD_SIZE (default WORLD_SIZE), MASTER_ADDR and MASTER_PORT
//    (required when WORLD_SIZE > 1).
// 2. SLURM, inside an srun step only (SLURM_STEP_ID or SLURM_STEPID set; in the sbatch /
//    salloc shell they are ignored, as torchrun does, and `note` says so):
//    SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (required), the tasks on this
//    node from SLURM_NTASKS_PER_NODE / SLURM_TASKS_PER_NODE ("4(x2)" -> 4; default 1),
//    MASTER_ADDR or else the first host of SLURM_JOB_NODELIST / SLURM_NODELIST,
//    MASTER_PORT or else 29500.
// 3. nothing: world size 1.
// A missing or malformed value is a bireco::Error naming the variable.
Environment read_environment(const std::map<std::string, std::string>& vars);

// The first host of a SLURM node list in its compressed form:
// "node[01-04,07],gpu5" -> "node01", "gpu-a[1,3]-b2" -> "gpu-a1-b2". `variable` names the
// source in error messages.
std::string first_slurm_host(const std::string& nodelist,
                             const std::string& variable = "SLURM_NODELIST");

}  // namespace bireco::distributed
