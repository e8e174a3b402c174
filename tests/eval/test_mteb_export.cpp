// MTEB, offline, on a `bireco export`: a retrieval task defined from the local SciFact files
// (tests/eval/mteb_export_parity.py), run by the pinned `mteb` on SentenceTransformer(dir) with
// the prompts the export carries, scores as `bireco eval` on the same folder (nDCG@10, MRR@10,
// MAP@100 and recall@100 within 1e-4). A subset keeps it short on a CPU: the judged documents
// plus the corpus's first others, up to 400 (SmolLM2: the first 100 queries, 200 documents).
#include <gtest/gtest.h>

#include "test_support.h"

namespace bireco::test {
namespace {

namespace fs = std::filesystem;

CommandResult run_mteb(const fs::path& source, const fs::path& work, const std::string& extra) {
  return run_command("'" + python() + "' '" +
                     (source_dir() / "tests/eval/mteb_export_parity.py").string() + "' --bireco '" +
                     bireco_binary().string() + "' --source '" + source.string() + "' --work '" +
                     work.string() + "' --data '" +
                     (shared_dir() / "realdata/datasets/beir-scifact").string() + "' " + extra);
}

// The demo's tiny Llama with random weights: its ranking is near chance, but one that both sides
// must reproduce exactly. Initialised at HF's 0.02 its embeddings lie within 0.04 cosine of each
// other and 457 of its top-100 score gaps are below 1e-6 (16 exact ties), so that fp32 rounding
// (3e-8 between any two implementations) decides rankings; at 0.2 they spread over 0.94 and
// 2 gaps are below 1e-7.
TEST(MtebExport, TinyExportScoresInMtebAsInBirecoEval) {
  BIRECO_REQUIRE_PYTHON("mteb sentence_transformers");
  BIRECO_REQUIRE_SHARED("realdata/datasets/beir-scifact");
  TempDir tmp;
  const auto run = run_mteb(source_dir() / "configs/demo/tiny-llama", tmp.path(),
                            "--init-range 0.2 --max-corpus 400 --max-length 64 --template "
                            "'<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>'");
  std::cout << run.output.substr(run.output.size() > 4000 ? run.output.size() - 4000 : 0);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("mteb matches bireco eval"), std::string::npos);
}

TEST(MtebExport, SmolLM2ExportScoresInMtebAsInBirecoEval) {
  BIRECO_REQUIRE_SMOLLM2();
  BIRECO_REQUIRE_PYTHON("mteb sentence_transformers");
  BIRECO_REQUIRE_SHARED("realdata/datasets/beir-scifact");
  TempDir tmp;
  const auto run = run_mteb(
      smollm2_dir(), tmp.path(),
      "--max-queries 100 --max-corpus 200 --template '<|im_start|>user\n{text}<|im_end|>'");
  std::cout << run.output.substr(run.output.size() > 4000 ? run.output.size() - 4000 : 0);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("mteb matches bireco eval"), std::string::npos);
}

}  // namespace
}  // namespace bireco::test
