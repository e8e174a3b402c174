// Empty text, ill-formed UTF-8 and megabyte inputs on the real tokenizers, with the behaviour
// documented in hf_tokenizer.h / sentencepiece_tokenizer.h.
#include <gtest/gtest.h>

#include <chrono>

#include "bireco/text/hf_tokenizer.h"
#include "bireco/text/unicode.h"
#include "text/text_test_support.h"

namespace bireco::test {
namespace {

using Ids = std::vector<int32_t>;

TEST(TokenizerEdgeCases, EmptyText) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  for (const char* name : {"llama3.2", "qwen2.5", "llama2-hf", "llama2-sp"}) {
    const auto& t = real_tokenizer(name);
    EXPECT_EQ(t.encode(""), Ids{}) << name;
    EXPECT_EQ(t.decode({}), "") << name;
  }
  EXPECT_EQ(real_tokenizer("llama3.2").encode("", true), Ids{128000});
  EXPECT_EQ(real_tokenizer("qwen2.5").encode("", true), Ids{});
  EXPECT_EQ(real_tokenizer("llama2-hf").encode("", true), Ids{1});
  EXPECT_EQ(real_tokenizer("llama2-sp").encode("", true), Ids{1});
}

TEST(TokenizerEdgeCases, SpecialTokenIds) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const auto& llama3 = real_tokenizer("llama3.2");
  EXPECT_EQ(llama3.bos_id(), 128000);
  EXPECT_EQ(llama3.eos_id(), 128001);
  EXPECT_EQ(llama3.pad_id(), 128004);  // <|finetune_right_pad_id|>, set by Unsloth
  EXPECT_EQ(llama3.vocab_size(), 128256);
  EXPECT_EQ(llama3.token_to_id("<|eot_id|>"), 128009);
  const auto& qwen = real_tokenizer("qwen2.5");
  EXPECT_EQ(qwen.bos_id(), std::nullopt);
  EXPECT_EQ(qwen.eos_id(), 151645);  // <|im_end|>
  EXPECT_EQ(qwen.pad_id(), 151643);  // <|endoftext|>
  EXPECT_EQ(qwen.vocab_size(), 151665);
  for (const char* name : {"llama2-hf", "llama2-sp"}) {
    const auto& llama2 = real_tokenizer(name);
    EXPECT_EQ(llama2.bos_id(), 1) << name;
    EXPECT_EQ(llama2.eos_id(), 2) << name;
    EXPECT_EQ(llama2.pad_id(), std::nullopt) << name;
    EXPECT_EQ(llama2.vocab_size(), 32000) << name;
    EXPECT_EQ(llama2.token_to_id("<0x0A>"), 13) << name;
  }
}

// Byte-level: the ids spell the raw bytes, ill-formed ones included; decode gives U+FFFD
// for them, as HF does.
TEST(TokenizerEdgeCases, ByteLevelEncodesInvalidUtf8AsRawBytes) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const std::string raw = "caf\xC3\xA9 \xFF\xFE na\xEF\xBF ve \xC3 end\x80";
  for (const char* name : {"llama3.2", "qwen2.5"}) {
    const auto& t = dynamic_cast<const text::HfTokenizer&>(real_tokenizer(name));
    const auto ids = t.encode(raw);
    std::string bytes;
    for (const int32_t id : ids) {
      const std::string* token = t.id_to_token(id);
      ASSERT_NE(token, nullptr);
      for (size_t pos = 0; pos < token->size();) {
        size_t n;
        const int32_t cp = text::unicode::decode_char(*token, pos, &n);
        bytes += static_cast<char>(text::unicode::unicode_to_byte(static_cast<char32_t>(cp)));
        pos += n;
      }
    }
    EXPECT_EQ(bytes, raw) << name;
    EXPECT_EQ(t.decode(ids), text::unicode::to_valid_utf8(raw)) << name;
  }
}

TEST(TokenizerEdgeCases, SentencePieceStyleInvalidUtf8) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  // tokenizer.json with byte fallback: each ill-formed byte is its <0xNN> piece.
  const auto& hf = real_tokenizer("llama2-hf");
  const auto ids = hf.encode(
      "a\xFF"
      "b");
  EXPECT_NE(std::find(ids.begin(), ids.end(), *hf.token_to_id("<0xFF>")), ids.end());
  EXPECT_EQ(hf.decode(ids),
            "a\xEF\xBF\xBD"
            "b");
  // libsentencepiece replaces ill-formed bytes with U+FFFD before encoding.
  const auto& sp = real_tokenizer("llama2-sp");
  EXPECT_EQ(sp.encode("a\xFF"
                      "b"),
            sp.encode("a\xEF\xBF\xBD"
                      "b"));
}

// About 1 MB of a shape that stresses a stage: one giant pre-token (letters), one giant
// whitespace run (the `\s+(?!\S)` lookahead), digits, and real prose.
std::vector<std::pair<std::string, std::string>> megabyte_inputs() {
  constexpr size_t kSize = 1 << 20;
  std::string prose;
  for (const auto& r : read_tokenizations("llama3.2.jsonl")) {
    if (text::unicode::is_valid_utf8(r.text)) prose += r.text + "\n";
  }
  std::string big_prose;
  while (big_prose.size() < kSize) big_prose += prose;
  std::string digits;
  for (size_t i = 0; i < kSize; ++i) digits += static_cast<char>('0' + i * 7 % 10);
  return {{"letters", std::string(kSize, 'a')},
          {"spaces", std::string(kSize, ' ') + "x"},
          {"newlines", std::string(kSize, '\n')},
          {"digits", digits},
          {"prose", big_prose}};
}

TEST(TokenizerEdgeCases, MegabyteInputs) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const auto inputs = megabyte_inputs();
  for (const char* name : {"llama3.2", "qwen2.5", "llama2-hf", "llama2-sp"}) {
    const auto& t = real_tokenizer(name);
    for (const auto& [shape, input] : inputs) {
      const auto start = std::chrono::steady_clock::now();
      const auto ids = t.encode(input);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_FALSE(ids.empty());
      EXPECT_LT(seconds, 30.0) << name << " " << shape;  // loose: shared CI machines
      const std::string expected =
          std::string(name) == "qwen2.5"
              ? text::unicode::normalize(input, text::unicode::NormalForm::kNFC)
              : input;
      EXPECT_TRUE(t.decode(ids) == expected) << name << " " << shape << ": no round trip";
      std::printf("  %-10s %-9s %8zu ids in %.3f s\n", name, shape.c_str(), ids.size(), seconds);
    }
  }
}

}  // namespace
}  // namespace bireco::test
