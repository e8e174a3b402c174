// Our tokenizers against independent references on the real tokenizer files: the ids
// transformers.js / SentencePiece gave for 196 strings (realdata/tokenizations) and llama.cpp's
// test vectors made with HF AutoTokenizer (realdata/llamacpp_refs). Every line must match.
#include <gtest/gtest.h>

#include "bireco/text/unicode.h"
#include "text/text_test_support.h"

namespace bireco::test {
namespace {

struct ReferenceCase {
  const char* tokenizer;  // under realdata/tokenizers
  const char* file;       // under realdata/tokenizations
  bool add_special_tokens;
};

std::ostream& operator<<(std::ostream& os, const ReferenceCase& c) { return os << c.file; }

class ReferenceTokenizations : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(ReferenceTokenizations, EveryLineMatches) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizations");
  const auto& c = GetParam();
  const auto& tokenizer = real_tokenizer(c.tokenizer);
  const auto references = read_tokenizations(c.file);
  ASSERT_EQ(references.size(), 196u);
  size_t mismatches = 0;
  for (size_t i = 0; i < references.size(); ++i) {
    const auto ids = tokenizer.encode(references[i].text, c.add_special_tokens);
    if (ids != references[i].ids) {
      ++mismatches;
      ADD_FAILURE() << c.file << " line " << i + 1 << ": "
                    << nlohmann::json(references[i].text).dump() << "\n  expected "
                    << ids_to_string(references[i].ids) << "\n  got      " << ids_to_string(ids);
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_P(ReferenceTokenizations, EncodeBatchEqualsOneByOne) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizations");
  const auto& c = GetParam();
  const auto& tokenizer = real_tokenizer(c.tokenizer);
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> expected;
  for (const auto& r : read_tokenizations(c.file)) {
    texts.push_back(r.text);
    expected.push_back(r.ids);
  }
  EXPECT_EQ(tokenizer.encode_batch(texts, c.add_special_tokens, 4), expected);
}

INSTANTIATE_TEST_SUITE_P(
    RealData, ReferenceTokenizations,
    ::testing::Values(ReferenceCase{"llama3.2", "llama3.2.jsonl", false},
                      ReferenceCase{"llama3.2", "llama3.2__with_special_tokens.jsonl", true},
                      ReferenceCase{"qwen2.5", "qwen2.5.jsonl", false},
                      ReferenceCase{"qwen2.5", "qwen2.5__with_special_tokens.jsonl", true},
                      ReferenceCase{"llama2-hf", "llama2-hf.jsonl", false},
                      ReferenceCase{"llama2-hf", "llama2-hf__with_special_tokens.jsonl", true},
                      ReferenceCase{"llama2-sp/tokenizer.model", "llama2-sp.jsonl", false},
                      ReferenceCase{"llama2-sp/tokenizer.model", "llama2-sp__bos.jsonl", true}),
    [](const ::testing::TestParamInfo<ReferenceCase>& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.rfind(".jsonl"));
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

struct LlamaCppCase {
  const char* vocab;      // ggml-vocab-<vocab>.gguf.{inp,out}
  const char* tokenizer;  // under realdata/tokenizers
};

std::ostream& operator<<(std::ostream& os, const LlamaCppCase& c) { return os << c.vocab; }

class LlamaCppReference : public ::testing::TestWithParam<LlamaCppCase> {};

TEST_P(LlamaCppReference, AllCasesMatch) {
  BIRECO_REQUIRE_SHARED("realdata/llamacpp_refs");
  const auto& c = GetParam();
  const auto& tokenizer = real_tokenizer(c.tokenizer);
  const auto references = read_llamacpp(c.vocab);
  ASSERT_EQ(references.size(), 46u);
  for (size_t i = 0; i < references.size(); ++i) {
    EXPECT_EQ(ids_to_string(tokenizer.encode(references[i].text)), ids_to_string(references[i].ids))
        << c.vocab << " case " << i << ": " << nlohmann::json(references[i].text).dump();
  }
}

INSTANTIATE_TEST_SUITE_P(RealData, LlamaCppReference,
                         ::testing::Values(LlamaCppCase{"llama-bpe", "llama3.2"},
                                           LlamaCppCase{"qwen2", "qwen2.5"},
                                           LlamaCppCase{"llama-spm", "llama2-sp"},
                                           LlamaCppCase{"llama-spm", "llama2-hf"}),
                         [](const ::testing::TestParamInfo<LlamaCppCase>& info) {
                           std::string name =
                               std::string(info.param.vocab) + "_" + info.param.tokenizer;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

// decode(encode(x)) == x on every reference string, for all four tokenizers; Qwen's NFC
// normalizer makes that NFC(x) (the accented-latin-NFD lines), as in HF.
class RoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(RoundTrip, DecodeOfEncodeGivesTheText) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizations");
  const std::string name = GetParam();
  const auto& tokenizer = real_tokenizer(name);
  for (const auto& reference : read_tokenizations("llama3.2.jsonl")) {
    const std::string expected =
        name == "qwen2.5"
            ? text::unicode::normalize(reference.text, text::unicode::NormalForm::kNFC)
            : reference.text;
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(reference.text)), expected)
        << name << ": " << nlohmann::json(reference.text).dump();
    // Skipping special tokens drops the BOS that add_special_tokens put in front.
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(reference.text, true), true),
              tokenizer.decode(tokenizer.encode(reference.text, false), true))
        << name << ": " << nlohmann::json(reference.text).dump();
  }
}

INSTANTIATE_TEST_SUITE_P(RealData, RoundTrip,
                         ::testing::Values("llama3.2", "qwen2.5", "llama2-hf", "llama2-sp"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace bireco::test
