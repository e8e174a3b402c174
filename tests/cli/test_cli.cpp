// The `bireco` executable end to end: user mistakes give one line and a non-zero status,
// capabilities not built yet say so with status 2, --help works for every command.
#include <gtest/gtest.h>

#include "test_support.h"

namespace bireco::test {
namespace {

std::string bireco(const std::string& args) { return bireco_binary().string() + " " + args; }

size_t count_lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST(Cli, MisspeltKeyIsOneLineWithSuggestion) {
  TempDir tmp;
  write_file(tmp / "broken.json",
             "{\n  \"model\": {\"path\": \"m\"},\n  \"optim\": {\"learning_rate\": 0.1}\n}\n");
  const auto r = run_command(bireco("train --config " + (tmp / "broken.json").string()));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("broken.json:3: unknown key 'optim.learning_rate'"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("did you mean"), std::string::npos) << r.output;
}

TEST(Cli, MissingConfigFileIsOneLine) {
  const auto r = run_command(bireco("train --config /nonexistent/stage.yaml"));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.output, "error: config file not found: /nonexistent/stage.yaml\n");
}

TEST(Cli, DryRunPrintsResolvedConfig) {
  TempDir tmp;
  write_file(tmp / "m/config.json", "{}");
  write_file(tmp / "s.yaml", "model: {path: " + (tmp / "m").string() + "}\n");
  const auto r = run_command(bireco("train --config " + (tmp / "s.yaml").string() +
                                    " --dry-run --set train.seed=9"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"seed\": 9"), std::string::npos) << r.output;
}

// `bireco config -c FILE --set k=v` prints the overridden config (CLI11 once required
// exactly one option, so any --set failed with "Exactly 1 option").
TEST(Cli, ConfigCommandTakesSet) {
  TempDir tmp;
  write_file(tmp / "s.yaml", "model: {path: m}\n");
  const auto r = run_command(bireco("config -c " + (tmp / "s.yaml").string() +
                                    " --set train.seed=9 --set 'text.template=\"<s>{text}\"'"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"seed\": 9"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"template\": \"<s>{text}\""), std::string::npos) << r.output;
  const auto none = run_command(bireco("config --set train.seed=9"));
  EXPECT_EQ(none.status, 1) << none.output;
  EXPECT_NE(none.output.find("give --config FILE"), std::string::npos) << none.output;
  EXPECT_NE(run_command(bireco("config --schema --set train.seed=9")).status, 0);
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* command :
       {"train", "embed", "eval", "forward", "tokenize", "export", "info", "launch", "config"}) {
    const auto r = run_command(bireco(std::string(command) + " --help"));
    EXPECT_EQ(r.status, 0) << command << ": " << r.output;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << command << ": " << r.output;
  }
}

TEST(Cli, SchemaMatchesConfigsReadme) {
  const auto r = run_command(bireco("config --schema"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(read_file(source_dir() / "configs/README.md").find(r.output), std::string::npos);
}

}  // namespace
}  // namespace bireco::test
