// In tests/cli, not tests/text: it runs the bireco executable, which the torch-free sanitized
// build (bireco_tests_lite) does not build.
// `bireco tokenize` with the real SmolLM2 tokenizer (49,152-token byte-level BPE, as transformers
// rebuilds it from the GGUF: scripts/get_smollm2.sh) equals the HF `tokenizers` library on every
// line of real text in ../shared/realdata: the tokenization strings and every text field of its
// datasets (tests/text/hf_tokenize_realdata.py lists them), with and without special tokens.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace bireco::text {
namespace {
using bireco::test::run_command;

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(SmolLM2Tokenizer, EveryRealTextTokenizesAsHfTokenizersDoes) {
  BIRECO_REQUIRE_SMOLLM2();
  BIRECO_REQUIRE_SHARED("realdata/datasets");
  BIRECO_REQUIRE_PYTHON("tokenizers");
  bireco::test::TempDir tmp;
  const auto tokenizer = bireco::test::smollm2_dir();
  const auto hf = run_command(
      "'" + bireco::test::python() + "' '" +
      (bireco::test::source_dir() / "tests/text/hf_tokenize_realdata.py").string() + "' '" +
      (tokenizer / "tokenizer.json").string() + "' '" +
      (bireco::test::shared_dir() / "realdata").string() + "' '" + tmp.path().string() + "'");
  ASSERT_EQ(hf.status, 0) << hf.output;
  const auto texts = lines_of(tmp / "texts.jsonl");
  // Every source contributed: the strings (196) and the datasets (about 50,000 texts).
  ASSERT_GT(texts.size(), 50000u) << hf.output;
  for (const auto& [flag, expected_file] : {std::pair<std::string, std::string>{"", "ids.jsonl"},
                                            {" --add-special-tokens", "ids_special.jsonl"}}) {
    const auto ours = tmp / ("bireco_" + expected_file);
    const auto run =
        run_command("'" + bireco::test::bireco_binary().string() + "' tokenize --tokenizer '" +
                    tokenizer.string() + "' --input '" + (tmp / "texts.jsonl").string() + "'" +
                    flag + " > '" + ours.string() + "'");
    ASSERT_EQ(run.status, 0) << run.output;
    const auto expected = lines_of(tmp / expected_file), actual = lines_of(ours);
    ASSERT_EQ(expected.size(), texts.size());
    ASSERT_EQ(actual.size(), texts.size()) << flag;
    size_t mismatches = 0, tokens = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto want = nlohmann::json::parse(expected[i])["ids"],
                 got = nlohmann::json::parse(actual[i])["ids"];
      tokens += want.size();
      if (want != got && ++mismatches <= 3)
        ADD_FAILURE() << "line " << i + 1 << flag << ": " << texts[i].substr(0, 200)
                      << "\n  tokenizers " << want.dump() << "\n  bireco     " << got.dump();
    }
    EXPECT_EQ(mismatches, 0u) << flag;
    std::cout << "[ smollm2  ] " << texts.size() << " texts, " << tokens << " tokens" << flag
              << ": " << mismatches << " differ\n";
  }
}

}  // namespace
}  // namespace bireco::text
