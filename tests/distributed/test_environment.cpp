// distributed::read_environment on fake environments: torchrun, SLURM, nothing, and the mistakes;
// and the device each rank takes from its LOCAL_RANK.
#include <gtest/gtest.h>

#include "bireco/distributed/environment.h"
#include "bireco/distributed/group.h"
#include "test_support.h"

namespace bireco::test {
namespace {

using distributed::first_slurm_host;
using distributed::read_environment;
using Vars = std::map<std::string, std::string>;

TEST(DistEnvironment, NoVariablesIsOneProcess) {
  const auto env = read_environment(Vars{{"HOME", "/root"}});
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.source, "none");
}

TEST(DistEnvironment, TorchrunVariables) {
  const auto env = read_environment(Vars{{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                         {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_ADDR", "node07"},
                                         {"MASTER_PORT", "29611"}});
  EXPECT_EQ(env.source, "torchrun");
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 4);
  EXPECT_EQ(env.master_addr, "node07");
  EXPECT_EQ(env.master_port, 29611);
  EXPECT_TRUE(env.distributed());
}

TEST(DistEnvironment, TorchrunSingleProcessNeedsNoMaster) {
  const auto env = read_environment(Vars{{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.local_rank, 0);
}

TEST(DistEnvironment, TorchrunErrorsNameTheVariable) {
  const Vars base = {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1234"}};
  auto with = [&](const std::string& name, const std::string& value) {
    Vars v = base;
    v[name] = value;
    return error_of([&] { read_environment(v); });
  };
  auto without = [&](const std::string& name) {
    Vars v = base;
    v.erase(name);
    return error_of([&] { read_environment(v); });
  };
  EXPECT_NE(with("RANK", "one").find("RANK='one' is not an integer"), std::string::npos);
  EXPECT_NE(with("RANK", "2").find("RANK=2 is outside 0..1"), std::string::npos);
  EXPECT_NE(with("WORLD_SIZE", "0").find("WORLD_SIZE=0 must be at least 1"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "70000").find("MASTER_PORT=70000 is not a TCP port"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "12x").find("MASTER_PORT='12x'"), std::string::npos);
  EXPECT_NE(with("LOCAL_RANK", "3").find("LOCAL_RANK=3 is outside"), std::string::npos);
  EXPECT_NE(without("WORLD_SIZE").find("WORLD_SIZE is not set"), std::string::npos);
  EXPECT_NE(without("RANK").find("RANK is not set"), std::string::npos);
  EXPECT_NE(without("MASTER_ADDR").find("MASTER_ADDR is not set"), std::string::npos);
  EXPECT_NE(without("MASTER_PORT").find("MASTER_PORT is not set"), std::string::npos);
}

TEST(DistEnvironment, SlurmVariables) {
  const auto env = read_environment(Vars{{"SLURM_STEP_ID", "0"},
                                         {"SLURM_PROCID", "6"},
                                         {"SLURM_NTASKS", "8"},
                                         {"SLURM_LOCALID", "2"},
                                         {"SLURM_NTASKS_PER_NODE", "4"},
                                         {"SLURM_JOB_NODELIST", "gpu[03-04,09]"}});
  EXPECT_EQ(env.source, "slurm");
  EXPECT_EQ(env.rank, 6);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 2);
  EXPECT_EQ(env.local_world_size, 4);
  EXPECT_EQ(env.master_addr, "gpu03");
  EXPECT_EQ(env.master_port, 29500);
}

TEST(DistEnvironment, SlurmTasksPerNodeCompressedAndMasterOverride) {
  const auto env = read_environment(Vars{{"SLURM_STEP_ID", "0"},
                                         {"SLURM_PROCID", "1"},
                                         {"SLURM_NTASKS", "4"},
                                         {"SLURM_LOCALID", "1"},
                                         {"SLURM_TASKS_PER_NODE", "2(x2)"},
                                         {"SLURM_NODELIST", "a,b"},
                                         {"MASTER_ADDR", "10.0.0.1"},
                                         {"MASTER_PORT", "4000"}});
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "10.0.0.1");
  EXPECT_EQ(env.master_port, 4000);
}

// An sbatch / salloc shell carries SLURM_PROCID=0 and the allocation's SLURM_NTASKS but no step
// id: read as rank 0 of 4, a plain `bireco train` there waited for three ranks that never came.
TEST(DistEnvironment, SlurmBatchShellIsOneProcess) {
  const Vars batch_shell = {{"SLURM_JOB_ID", "4242"},
                            {"SLURM_PROCID", "0"},
                            {"SLURM_NTASKS", "4"},
                            {"SLURM_LOCALID", "0"},
                            {"SLURM_JOB_NODELIST", "gpu[01-02]"}};
  const auto env = read_environment(batch_shell);
  EXPECT_EQ(env.source, "none");
  EXPECT_EQ(env.world_size, 1);
  EXPECT_FALSE(env.distributed());
  EXPECT_NE(env.note.find("SLURM_NTASKS=4 ignored: not inside an srun step (SLURM_STEP_ID unset)"),
            std::string::npos)
      << env.note;
  // The batch, extern and interactive steps are no srun step either.
  for (const char* special : {"batch", "extern", "4294967291", "4294967290"}) {
    Vars v = batch_shell;
    v["SLURM_STEP_ID"] = special;
    EXPECT_EQ(read_environment(v).world_size, 1) << special;
  }
  for (const char* step_var : {"SLURM_STEP_ID", "SLURM_STEPID"}) {  // the same shell inside `srun`
    Vars step = batch_shell;
    step[step_var] = "0";
    const auto in_step = read_environment(step);
    EXPECT_EQ(in_step.source, "slurm") << step_var;
    EXPECT_EQ(in_step.world_size, 4) << step_var;
    EXPECT_TRUE(in_step.note.empty());
  }
}

TEST(DistEnvironment, TorchrunVariablesWinOverSlurm) {
  const auto env = read_environment(Vars{{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_PROCID", "3"},
                                         {"SLURM_NTASKS", "4"}});
  EXPECT_EQ(env.source, "torchrun");
  EXPECT_EQ(env.world_size, 1);
}

TEST(DistEnvironment, SlurmErrorsNameTheVariable) {
  EXPECT_NE(error_of([] {
              read_environment(Vars{{"SLURM_STEP_ID", "0"},
                                    {"SLURM_PROCID", "0"},
                                    {"SLURM_NTASKS", "2"},
                                    {"SLURM_NODELIST", "n1"}});
            }).find("SLURM_LOCALID is not set"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              read_environment(Vars{{"SLURM_STEP_ID", "0"},
                                    {"SLURM_PROCID", "0"},
                                    {"SLURM_NTASKS", "2"},
                                    {"SLURM_LOCALID", "0"}});
            }).find("SLURM_NODELIST"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              read_environment(Vars{{"SLURM_STEP_ID", "0"},
                                    {"SLURM_PROCID", "0"},
                                    {"SLURM_NTASKS", "2"},
                                    {"SLURM_LOCALID", "0"},
                                    {"SLURM_NODELIST", "node[01-02"}});
            }).find("SLURM_NODELIST='node[01-02' is not a SLURM node list ('[' without ']')"),
            std::string::npos);
}

TEST(DistEnvironment, FirstHostOfCompressedNodelists) {
  EXPECT_EQ(first_slurm_host("node[01-04,07]"), "node01");
  EXPECT_EQ(first_slurm_host("gpu-a[1,3]-b2"), "gpu-a1-b2");
  EXPECT_EQ(first_slurm_host("x[7-9]-y[003-004]"), "x7-y003");
  EXPECT_EQ(first_slurm_host("single"), "single");
  EXPECT_EQ(first_slurm_host("alpha,beta[1-2]"), "alpha");
  EXPECT_EQ(first_slurm_host("n[10-11],m[1-3]"), "n10");
  EXPECT_NE(error_of([] { first_slurm_host("n[a-b]"); }).find("does not start with a number"),
            std::string::npos);
  EXPECT_NE(error_of([] { first_slurm_host(""); }).find("no host"), std::string::npos);
  EXPECT_NE(error_of([] { first_slurm_host("n]1["); }).find("']' without '['"), std::string::npos);
}

// torchrun/srun give each local rank its own GPU: `cuda` (and `auto` where a GPU is visible)
// means cuda:LOCAL_RANK in a multi-process run, never cuda:0 for everyone.
TEST(DistDevice, EachLocalRankTakesItsOwnGpu) {
  const auto env = read_environment(Vars{{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                         {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(distributed::rank_device("cuda", env, 4), "cuda:1");
  EXPECT_EQ(distributed::rank_device("auto", env, 4), "cuda:1");
  EXPECT_EQ(distributed::rank_device("auto", env, 0), "auto");    // no GPU: the CPU, as `auto` says
  EXPECT_EQ(distributed::rank_device("cuda:0", env, 4), "cuda:0");  // explicit stays explicit
  EXPECT_EQ(distributed::rank_device("cpu", env, 4), "cpu");
  EXPECT_EQ(distributed::rank_device("cuda", read_environment(Vars{}), 4), "cuda");  // one process
}

TEST(DistDevice, LocalRankWithoutItsOwnGpuIsAnErrorNamingIt) {
  const auto env = read_environment(Vars{{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "3"},
                                         {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}});
  const auto message = error_of([&] { distributed::rank_device("cuda", env, 2); });
  EXPECT_NE(message.find("model.device"), std::string::npos) << message;
  EXPECT_NE(message.find("LOCAL_RANK=3 and this process sees 2 GPU(s)"), std::string::npos) << message;
}

}  // namespace
}  // namespace bireco::test
