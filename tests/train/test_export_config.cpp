// `bireco export --config STAGE [--set k=v]`: the export records that stage's embedding
// settings (template, BOS/EOS, max length, default instruction) instead of the checkpoint's,
// so a base model becomes the untrained baseline of a run embedding exactly as the run will.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace bireco::test {
namespace {
namespace fs = std::filesystem;

TEST(ExportConfig, RecordsTheStagesEmbeddingSettingsInsteadOfTheDefaults) {
  TempDir tmp;
  const fs::path model = data_dir() / "hf-parity/llama",
                 stage = source_dir() / "configs/demo/stage2.json";
  const auto plain = run_command(bireco_binary().string() + " export --checkpoint " +
                                 model.string() + " --out " + (tmp / "plain").string());
  ASSERT_EQ(plain.status, 0) << plain.output;
  const auto configured = run_command(
      bireco_binary().string() + " export --checkpoint " + model.string() + " --config " +
      stage.string() + " --set text.max_length=48 --out " + (tmp / "configured").string());
  ASSERT_EQ(configured.status, 0) << configured.output;

  const auto defaults = nlohmann::json::parse(read_file(tmp / "plain/bireco_embedding.json"));
  const auto settings = nlohmann::json::parse(read_file(tmp / "configured/bireco_embedding.json"));
  // The stage file's values (configs/demo/stage2.json), with the --set applied.
  EXPECT_EQ(settings["template"], "{text}");
  EXPECT_EQ(settings["add_eos"], true);
  EXPECT_EQ(settings["max_length"], 48);
  EXPECT_EQ(settings["_default_instruction"],
            "Given a scientific claim, retrieve documents that support or refute the claim");
  // ... which are not what an export without --config records.
  EXPECT_NE(defaults["template"], settings["template"]);
  EXPECT_NE(defaults["max_length"], settings["max_length"]);
  // The weights are the checkpoint's either way.
  EXPECT_EQ(read_file(tmp / "plain/model.safetensors"),
            read_file(tmp / "configured/model.safetensors"));
}

TEST(ExportConfig, SetWithoutConfigAndABadKeyAreErrorsThatWriteNothing) {
  TempDir tmp;
  const fs::path model = data_dir() / "hf-parity/llama",
                 stage = source_dir() / "configs/demo/stage2.json";
  const auto no_config =
      run_command(bireco_binary().string() + " export --checkpoint " + model.string() +
                  " --set text.max_length=48 --out " + (tmp / "a").string());
  EXPECT_NE(no_config.status, 0);
  EXPECT_NE(no_config.output.find("--set needs --config"), std::string::npos) << no_config.output;
  const auto bad_key = run_command(bireco_binary().string() + " export --checkpoint " +
                                   model.string() + " --config " + stage.string() +
                                   " --set text.max_lenght=48 --out " + (tmp / "b").string());
  EXPECT_NE(bad_key.status, 0);
  EXPECT_NE(bad_key.output.find("text.max_lenght"), std::string::npos) << bad_key.output;
  EXPECT_FALSE(fs::exists(tmp / "a"));
  EXPECT_FALSE(fs::exists(tmp / "b"));
}

}  // namespace
}  // namespace bireco::test
