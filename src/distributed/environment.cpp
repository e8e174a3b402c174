#include "bireco/distributed/environment.h"

#include <cerrno>
#include <cstdlib>

#include "bireco/util/error.h"

extern char** environ;

namespace bireco::distributed {
namespace {

using Vars = std::map<std::string, std::string>;

const std::string* find(const Vars& vars, const std::string& name) {
  auto it = vars.find(name);
  return it == vars.end() ? nullptr : &it->second;
}

int parse_int(const std::string& name, const std::string& value) {
  char* end = nullptr;
  errno = 0;
  const long parsed = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno == ERANGE || parsed < INT32_MIN || parsed > INT32_MAX) {
    throw Error("environment variable " + name + "='" + value + "' is not an integer");
  }
  return static_cast<int>(parsed);
}

int required_int(const Vars& vars, const std::string& name, const std::string& because) {
  const std::string* value = find(vars, name);
  if (value == nullptr) throw Error("environment variable " + name + " is not set (" + because + ")");
  return parse_int(name, *value);
}

int optional_int(const Vars& vars, const std::string& name, int fallback) {
  const std::string* value = find(vars, name);
  return value == nullptr ? fallback : parse_int(name, *value);
}

// "4(x2),3" -> 4: the task count of this job's first node group.
int leading_count(const std::string& name, const std::string& value) {
  size_t n = 0;
  while (n < value.size() && std::isdigit(static_cast<unsigned char>(value[n]))) ++n;
  return parse_int(name, value.substr(0, n));
}

void check_ranks(Environment& env, const std::string& rank_var, const std::string& world_var,
                 const std::string& local_var) {
  if (env.world_size < 1) {
    throw Error("environment variable " + world_var + "=" + std::to_string(env.world_size) +
                " must be at least 1");
  }
  if (env.rank < 0 || env.rank >= env.world_size) {
    throw Error("environment variable " + rank_var + "=" + std::to_string(env.rank) +
                " is outside 0.." + std::to_string(env.world_size - 1) + " (" + world_var + "=" +
                std::to_string(env.world_size) + ")");
  }
  if (env.local_world_size < 1 || env.local_rank < 0 || env.local_rank >= env.local_world_size) {
    throw Error("environment variable " + local_var + "=" + std::to_string(env.local_rank) +
                " is outside 0.." + std::to_string(env.local_world_size - 1) +
                " (processes on this node: " + std::to_string(env.local_world_size) + ")");
  }
}

void read_master(const Vars& vars, Environment& env, bool port_required) {
  if (const std::string* addr = find(vars, "MASTER_ADDR")) {
    if (addr->empty()) throw Error("environment variable MASTER_ADDR is empty");
    env.master_addr = *addr;
  }
  if (port_required && find(vars, "MASTER_PORT") == nullptr) {
    throw Error("environment variable MASTER_PORT is not set (WORLD_SIZE > 1 needs rank 0's port)");
  }
  env.master_port = optional_int(vars, "MASTER_PORT", env.master_port);
  if (env.master_port < 1 || env.master_port > 65535) {
    throw Error("environment variable MASTER_PORT=" + std::to_string(env.master_port) +
                " is not a TCP port (1..65535)");
  }
}

Environment from_torchrun(const Vars& vars) {
  Environment env;
  env.source = "torchrun";
  env.world_size = required_int(vars, "WORLD_SIZE", "RANK is set");
  env.rank = required_int(vars, "RANK", "WORLD_SIZE is set");
  env.local_rank = optional_int(vars, "LOCAL_RANK", env.rank);
  env.local_world_size = optional_int(vars, "LOCAL_WORLD_SIZE", env.world_size);
  check_ranks(env, "RANK", "WORLD_SIZE", "LOCAL_RANK");
  if (env.distributed() && find(vars, "MASTER_ADDR") == nullptr) {
    throw Error("environment variable MASTER_ADDR is not set (WORLD_SIZE > 1 needs rank 0's host)");
  }
  read_master(vars, env, env.distributed());
  return env;
}

Environment from_slurm(const Vars& vars) {
  Environment env;
  env.source = "slurm";
  env.world_size = required_int(vars, "SLURM_NTASKS", "SLURM_PROCID is set");
  env.rank = required_int(vars, "SLURM_PROCID", "SLURM_NTASKS is set");
  env.local_rank = required_int(vars, "SLURM_LOCALID", "SLURM_PROCID is set");
  env.local_world_size = 1;
  for (const char* name : {"SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    if (const std::string* value = find(vars, name)) {
      env.local_world_size = leading_count(name, *value);
      break;
    }
  }
  check_ranks(env, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID");
  if (find(vars, "MASTER_ADDR") == nullptr) {
    bool found = false;
    for (const char* name : {"SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
      if (const std::string* list = find(vars, name)) {
        env.master_addr = first_slurm_host(*list, name);
        found = true;
        break;
      }
    }
    if (!found && env.distributed()) {
      throw Error("environment variables MASTER_ADDR and SLURM_NODELIST are both unset "
                  "(SLURM_NTASKS > 1 needs rank 0's host)");
    }
  }
  read_master(vars, env, false);
  return env;
}

// A step id srun gives its tasks: a number below Slurm's special ids (the interactive, batch and
// extern steps are 0xfffffffa.. and show as words or those numbers).
bool is_srun_step(const std::string& id) {
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos || id.size() > 10)
    return false;
  return std::stoull(id) < 0xfffffffaULL;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist, const std::string& variable) {
  auto bad = [&](const std::string& why) {
    return Error("environment variable " + variable + "='" + nodelist + "' is not a SLURM node list (" +
                 why + ")");
  };
  std::string host;
  size_t i = 0;
  while (i < nodelist.size() && nodelist[i] != ',') {
    if (nodelist[i] == ']') throw bad("']' without '['");
    if (nodelist[i] != '[') {
      host += nodelist[i++];
      continue;
    }
    // A range set "[01-04,07]": its first number, written as is (keeps zero padding).
    const size_t close = nodelist.find(']', i);
    if (close == std::string::npos) throw bad("'[' without ']'");
    const std::string set = nodelist.substr(i + 1, close - i - 1);
    const std::string first = set.substr(0, set.find_first_of(",-"));
    if (first.empty() || first.find_first_not_of("0123456789") != std::string::npos) {
      throw bad("'[" + set + "]' does not start with a number");
    }
    host += first;
    i = close + 1;
  }
  if (host.empty()) throw bad("no host");
  return host;
}

Environment read_environment(const std::map<std::string, std::string>& vars) {
  if (find(vars, "RANK") != nullptr || find(vars, "WORLD_SIZE") != nullptr) return from_torchrun(vars);
  if (find(vars, "SLURM_PROCID") != nullptr || find(vars, "SLURM_NTASKS") != nullptr) {
    // Task variables describe the step's tasks only inside `srun`, which sets a numeric step id.
    // The sbatch / salloc shell has them too (SLURM_PROCID=0, the allocation's SLURM_NTASKS) but
    // no step id, or a special one ("batch", "extern", "interactive", or their numbers from
    // 0xfffffffa up): read there, one process would wait for ranks that never start. torchrun
    // ignores them there too.
    const std::string* step = find(vars, "SLURM_STEP_ID");
    if (step == nullptr) step = find(vars, "SLURM_STEPID");
    if (step != nullptr && is_srun_step(*step)) return from_slurm(vars);
    Environment env;
    const std::string* ntasks = find(vars, "SLURM_NTASKS");
    env.note = "SLURM_NTASKS=" + (ntasks ? *ntasks : std::string("?")) +
               " ignored: not inside an srun step (SLURM_STEP_ID " +
               (step ? "is '" + *step + "'" : std::string("unset")) +
               "), so this is one process; run the tasks with `srun bireco ...` or `bireco launch`";
    return env;
  }
  return Environment{};
}

Environment read_environment() {
  std::map<std::string, std::string> vars;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const size_t eq = text.find('=');
    if (eq != std::string::npos) vars.emplace(text.substr(0, eq), text.substr(eq + 1));
  }
  return read_environment(vars);
}

}  // namespace bireco::distributed
