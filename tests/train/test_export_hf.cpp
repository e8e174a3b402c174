// `bireco export` loaded by the pinned Hugging Face stack itself embeds as bireco does, with no
// code beyond the libraries' calls (tests/train/export_hf_parity.py prints each check's smallest
// cosine; the bound is 0.99999 in fp32): SentenceTransformer(dir).encode for documents and,
// with prompt_name="query", queries, in batches of mixed lengths with texts longer than
// max_length; AutoModel + last-token pooling; PeftModel on dir/adapter; an adapter PEFT wrote
// (FEATURE_EXTRACTION and CAUSAL_LM) exported by bireco embeds as PEFT does.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bireco/train/export.h"
#include "test_support.h"

namespace bireco::test {
namespace {

namespace fs = std::filesystem;

CommandResult run_parity(const fs::path& source, const fs::path& work, const std::string& extra) {
  return run_command("'" + python() + "' '" +
                     (source_dir() / "tests/train/export_hf_parity.py").string() + "' --bireco '" +
                     bireco_binary().string() + "' --source '" + source.string() + "' --work '" +
                     work.string() + "' --data '" +
                     (shared_dir() / "realdata/datasets/beir-scifact").string() + "' " + extra);
}

// The demo's tiny Llama (SentencePiece tokenizer.model only, no pad token; random weights) with
// a template that is plain text to it, BOS and EOS, max_length 48, and LoRA adapters.
TEST(ExportHf, TinyExportEmbedsAsBirecoInSentenceTransformersTransformersAndPeft) {
  BIRECO_REQUIRE_PYTHON("sentence_transformers transformers peft");
  BIRECO_REQUIRE_SHARED("realdata/datasets/beir-scifact");
  TempDir tmp;
  const auto run = run_parity(source_dir() / "configs/demo/tiny-llama", tmp.path(), "--lora");
  std::cout << run.output.substr(run.output.size() > 6000 ? run.output.size() - 6000 : 0);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("all checks passed"), std::string::npos);
  EXPECT_NE(run.output.find("check peft.adapter_dir_equals_merged_export"), std::string::npos);
}

// The real SmolLM2-135M-Instruct (byte-level BPE tokenizer.json) with its chat markers as the
// template: special tokens around the text, EOS after.
TEST(ExportHf, SmolLM2ExportEmbedsAsBirecoInSentenceTransformersAndTransformers) {
  BIRECO_REQUIRE_SMOLLM2();
  BIRECO_REQUIRE_PYTHON("sentence_transformers transformers");
  BIRECO_REQUIRE_SHARED("realdata/datasets/beir-scifact");
  TempDir tmp;
  const auto run = run_parity(
      smollm2_dir(), tmp.path(),
      "--max-length 64 --max-chars 1500 --template '<|im_start|>user\n{text}<|im_end|>'");
  std::cout << run.output.substr(run.output.size() > 6000 ? run.output.size() - 6000 : 0);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("all checks passed"), std::string::npos);
}

}  // namespace
}  // namespace bireco::test
