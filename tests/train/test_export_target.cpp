// `bireco export --out DIR` never destroys what it did not write: a folder holding other files
// is refused and left as it was, so is one that is, holds or lies inside the checkpoint; an
// earlier export (its manifest lists every file) is replaced; a user's DIR.tmp is left alone.
#include <gtest/gtest.h>

#include "bireco/util/manifest.h"
#include "test_support.h"

namespace bireco::test {
namespace {
namespace fs = std::filesystem;

fs::path model_fixture() { return data_dir() / "hf-parity/llama"; }

CommandResult run_export(const fs::path& checkpoint, const fs::path& out) {
  return run_command(bireco_binary().string() + " export --checkpoint " + checkpoint.string() +
                     " --out " + out.string());
}

TEST(ExportTarget, RefusesAFolderHoldingOtherFilesAndLeavesItIntact) {
  TempDir tmp;
  const fs::path out = tmp / "run";
  write_file(out / "notes.txt", "mine");
  write_file(out / "step-10/model.safetensors", "weights");
  const auto r = run_export(model_fixture(), out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("export: --out '" + out.string() +
                          "' is not empty and not a previous bireco export"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(read_file(out / "notes.txt"), "mine");
  EXPECT_EQ(read_file(out / "step-10/model.safetensors"), "weights");
  EXPECT_FALSE(fs::exists(out / "config.json"));
}

// `export --checkpoint run/final --out run` erased run/ whole (the source included).
TEST(ExportTarget, RefusesTheCheckpointItsParentAndAFolderInsideIt) {
  TempDir tmp;
  const fs::path checkpoint = tmp / "run/final";
  fs::create_directories(checkpoint);
  fs::copy(model_fixture(), checkpoint, fs::copy_options::recursive);
  const std::string weights = read_file(checkpoint / "model.safetensors");
  const std::vector<std::pair<fs::path, std::string>> cases = {
      {tmp / "run", "contains '" + checkpoint.string() + "'"},
      {tmp / "run/../run/final", "is '" + checkpoint.string() + "'"},
      {checkpoint / "exported", "lies inside '" + checkpoint.string() + "'"}};
  for (const auto& [out, expected] : cases) {
    const auto r = run_export(checkpoint, out);
    EXPECT_EQ(r.status, 1) << out << "\n" << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << r.output;
  }
  EXPECT_EQ(read_file(checkpoint / "model.safetensors"), weights);
  EXPECT_FALSE(fs::exists(checkpoint / "exported"));
}

TEST(ExportTarget, ReplacesAnEarlierExportButNotOneSomebodyAddedTo) {
  TempDir tmp;
  const fs::path out = tmp / "exported";
  fs::create_directories(out);  // an empty folder is fine
  auto r = run_export(model_fixture(), out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(util::manifest_problem(out, util::ManifestCheck::kChecksums), "");
  EXPECT_TRUE(util::read_manifest(out).count("bireco_embedding.json"));

  r = run_export(model_fixture(), out);  // again: the earlier export is replaced
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("replacing the previous export"), std::string::npos) << r.output;

  write_file(out / "my-eval-results.json", "{}");
  r = run_export(model_fixture(), out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("it holds files the export did not write: my-eval-results.json"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(read_file(out / "my-eval-results.json"), "{}");
}

TEST(ExportTarget, LeavesTheUsersDotTmpFolderAlone) {
  TempDir tmp;
  write_file(tmp / "exported.tmp/keep.txt", "mine");
  const auto r = run_export(model_fixture(), tmp / "exported");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_file(tmp / "exported.tmp/keep.txt"), "mine");
  EXPECT_TRUE(fs::is_regular_file(tmp / "exported/model.safetensors"));
}

}  // namespace
}  // namespace bireco::test
