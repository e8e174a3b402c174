// `bireco launch` end to end with /bin/sh workers: variables, rank-prefixed output, the first
// failure's status, signal forwarding (SIGTERM without a SIGKILL after it).
#include <gtest/gtest.h>

#include "dist_test_support.h"

namespace bireco::test {
namespace {

std::string launch(const std::string& options, const std::string& script) {
  return bireco_binary().string() + " launch " + options + " -- /bin/sh -c '" + script + "'";
}

TEST(DistLaunch, SetsTorchrunVariablesAndPrefixesEachLine) {
  const auto r = run_timed(launch("--nproc-per-node 2 --nnodes 3 --node-rank 1 --master-addr 10.1.2.3 --master-port 4567",
                                  "echo vars $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR "
                                  "$MASTER_PORT; echo on-stderr >&2; printf no-newline"));
  ASSERT_EQ(r.result.status, 0) << r.result.output;
  const std::string& out = r.result.output;
  EXPECT_NE(out.find("[rank 2] vars 2 6 0 2 10.1.2.3 4567\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 3] vars 3 6 1 2 10.1.2.3 4567\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 2] on-stderr\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 3] no-newline\n"), std::string::npos) << out;
}

TEST(DistLaunch, ExitsWithFirstFailureAndStopsTheOthers) {
  // Rank 1 fails at once with 7; rank 0 would sleep 30 s unless stopped.
  const auto r = run_timed(launch("--nproc-per-node 2 --grace-period 2",
                                  "if [ $RANK = 1 ]; then exit 7; fi; sleep 30"));
  EXPECT_EQ(r.result.status, 7) << r.result.output;
  EXPECT_LT(r.seconds, 10) << r.result.output;
  EXPECT_NE(r.result.output.find("rank 1 exited with status 7"), std::string::npos) << r.result.output;
}

TEST(DistLaunch, AllSucceedIsZero) {
  const auto r = run_timed(launch("--nproc-per-node 3", "exit 0"));
  EXPECT_EQ(r.result.status, 0) << r.result.output;
}

TEST(DistLaunch, RunsBirecoSubcommandsWithTheSameExecutable) {
  const auto r = run_timed(bireco_binary().string() + " launch --nproc-per-node 2 -- --version");
  EXPECT_EQ(r.result.status, 0) << r.result.output;
  EXPECT_NE(r.result.output.find("[rank 0] bireco "), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("[rank 1] bireco "), std::string::npos) << r.result.output;
}

// Starts `launch <options> -- sh -c <script>` in the background, waits until both workers have
// printed "ready", sends SIGTERM to the launcher and waits for it. Returns the launcher's
// status line ("launcher-status=N") and the workers' log.
struct SigtermRun {
  std::string status, log;
};
SigtermRun sigterm_when_ready(const TempDir& tmp, const std::string& options, const std::string& script) {
  const std::string out = (tmp / "out.txt").string();
  const std::string shell =
      launch(options, script) + " > " + out + " 2>&1 & pid=$!; " +
      "for i in $(seq 200); do [ \"$(grep -c ready " + out + ")\" = 2 ] && break; sleep 0.05; done; " +
      "kill -TERM $pid; wait $pid; echo launcher-status=$?";
  write_file(tmp / "run.sh", shell + "\n");
  return {run_timed("/bin/sh " + (tmp / "run.sh").string()).result.output, read_file(out)};
}

TEST(DistLaunch, ForwardsSigtermToWorkers) {
  TempDir tmp;
  const auto r = sigterm_when_ready(tmp, "--nproc-per-node 2",
                                    "trap \"echo got-TERM; exit 0\" TERM; echo ready; while :; do sleep 0.05; done");
  EXPECT_NE(r.status.find("launcher-status=0"), std::string::npos) << r.status << r.log;
  EXPECT_NE(r.log.find("[rank 0] got-TERM"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("[rank 1] got-TERM"), std::string::npos) << r.log;
}

TEST(DistLaunch, SigtermIsNotFollowedBySigkillAfterTheGracePeriod) {
  // Workers that take 2 s to "save a checkpoint" after SIGTERM, with a 0.5 s grace period.
  TempDir tmp;
  const auto r = sigterm_when_ready(tmp, "--nproc-per-node 2 --grace-period 0.5",
                                    "trap \"sleep 2; echo saved; exit 0\" TERM; echo ready; while :; do sleep 0.05; done");
  EXPECT_NE(r.status.find("launcher-status=0"), std::string::npos) << r.status << r.log;
  EXPECT_NE(r.log.find("[rank 0] saved"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("[rank 1] saved"), std::string::npos) << r.log;
}

TEST(DistLaunch, InvalidOptionsNameTheOption) {
  const auto r = run_timed(launch("--nnodes 2 --node-rank 2", "true"));
  EXPECT_EQ(r.result.status, 1);
  EXPECT_NE(r.result.output.find("--node-rank 2 is outside 0..1"), std::string::npos) << r.result.output;
}

}  // namespace
}  // namespace bireco::test
