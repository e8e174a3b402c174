// text::sentencepiece_tokenizer_json: the Llama-2 tokenizer.model written as tokenizer.json
// tokenizes real text as SentencePiece does (through bireco's reading of tokenizer.json, which the
// reference suites hold to HF's), and its merges are those of HF's own conversion of the same
// model.
#include <gtest/gtest.h>

#include "bireco/text/sentencepiece_json.h"
#include "text/text_test_support.h"

namespace bireco::test {
namespace {

TEST(SentencePieceJson, Llama2ConvertedTokenizesRealTextAsSentencePiece) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers/llama2-sp");
  TempDir tmp;
  const auto json =
      text::sentencepiece_tokenizer_json(realdata() / "tokenizers/llama2-sp/tokenizer.model");
  write_file(tmp / "tokenizer.json", json.dump());
  const auto converted = text::Tokenizer::load(tmp / "tokenizer.json");
  const auto& sp = real_tokenizer("llama2-sp/tokenizer.model");
  std::vector<std::string> texts = text::tokenizer_probe_texts();
  for (const auto& r : read_tokenizations("llama2-sp.jsonl")) texts.push_back(r.text);
  std::istringstream corpus(read_file(realdata() / "datasets/beir-scifact/corpus.jsonl"));
  std::string line;
  for (int n = 0; n < 300 && std::getline(corpus, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    texts.push_back(j.at("title").get<std::string>() + " " + j.at("text").get<std::string>());
  }
  size_t specials_in_text = 0;
  for (const auto& text : texts) {
    // "<s>" written in a text is BOS for HF (an added token) and plain text for SentencePiece.
    if (text.find("<s>") != std::string::npos || text.find("</s>") != std::string::npos) {
      ++specials_in_text;
      continue;
    }
    EXPECT_EQ(converted->encode(text), sp.encode(text)) << nlohmann::json(text).dump();
  }
  EXPECT_EQ(specials_in_text, 3u);
  EXPECT_EQ(converted->bos_id(), sp.bos_id());
  EXPECT_EQ(converted->encode("Hello", true), (std::vector<int32_t>{1, 15043}));
}

TEST(SentencePieceJson, MergesAreThoseOfHfsConversion) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers/llama2-hf");
  const auto ours =
      text::sentencepiece_tokenizer_json(realdata() / "tokenizers/llama2-sp/tokenizer.model");
  const auto hf =
      nlohmann::json::parse(read_file(realdata() / "tokenizers/llama2-hf/tokenizer.json"));
  const auto& merges = ours.at("model").at("merges");
  const auto& reference = hf.at("model").at("merges");
  ASSERT_EQ(merges.size(), reference.size());
  // The HF file stores three pieces with U+0020 where the .model has U+00A0 (realdata/SOURCES.md):
  // those three merges differ; every other merge has the same rank, ties of score included.
  size_t differ = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string pair =
        merges[i][0].get<std::string>() + " " + merges[i][1].get<std::string>();
    if (pair == reference[i].get<std::string>()) continue;
    ++differ;
    EXPECT_NE(pair.find("\xc2\xa0"), std::string::npos)
        << i << ": " << pair << " vs " << reference[i];
  }
  EXPECT_EQ(differ, 3u);
  EXPECT_EQ(ours.at("model").at("vocab").size(), 32000u);
  EXPECT_TRUE(ours.at("model").at("byte_fallback").get<bool>());
}

TEST(SentencePieceJson, NotASentencePieceModelIsAnErrorNamingTheFile) {
  TempDir tmp;
  write_file(tmp / "tokenizer.model", "not a model");
  const std::string error =
      error_of([&] { text::sentencepiece_tokenizer_json(tmp / "tokenizer.model"); });
  EXPECT_NE(error.find((tmp / "tokenizer.model").string()), std::string::npos) << error;
}

}  // namespace
}  // namespace bireco::test
