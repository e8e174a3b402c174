// The tokenizer.json machinery on two hand-made tokenizers in tests/data (always available):
// expected ids are worked out by hand in the comments; malformed files give named errors.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "bireco/text/hf_tokenizer.h"
#include "bireco/text/tokenizer.h"
#include "bireco/text/unicode.h"
#include "bireco/util/error.h"
#include "test_support.h"
#include "text/text_test_support.h"

namespace bireco::test {
namespace {

using text::Tokenizer;
using Ids = std::vector<int32_t>;

std::filesystem::path fixture(const std::string& name) { return data_dir() / "tokenizers" / name; }

// Byte-level fixture: vocab h e l o w r d Ġ ! (0-8), he ll hell hello Ġw or Ġwor ld Ġworld lo
// ollo (9-19); added <|bos|> 20, <|end|> 21; merges by rank: h+e, l+l, he+ll, hell+o, Ġ+w,
// o+r, Ġw+or, l+d, Ġwor+ld, l+o.
TEST(TinyByteLevel, MergesByRank) {
  const auto t = Tokenizer::load(fixture("tiny-bytelevel"));
  // "hello": h e l l o -> he l l o (rank 0) -> he ll o (1) -> hell o (2) -> hello (3); l+o
  // (rank 9) never wins. " world": Ġ w o r l d -> Ġw -> or -> Ġwor -> ld -> Ġworld.
  EXPECT_EQ(t->encode("hello world!"), (Ids{12, 17, 8}));
  // o l l o: l+l (rank 1) beats l+o (rank 9) although l+o is further left at the end.
  EXPECT_EQ(t->encode("ollo"), (Ids{3, 10, 3}));
  EXPECT_EQ(t->encode(""), Ids{});
}

TEST(TinyByteLevel, TemplateAddsBos) {
  const auto t = Tokenizer::load(fixture("tiny-bytelevel"));
  EXPECT_EQ(t->encode("hello world!", true), (Ids{20, 12, 17, 8}));
  EXPECT_EQ(t->encode("", true), Ids{20});
  // No tokenizer_config.json: BOS is what the post-processor puts in front.
  EXPECT_EQ(t->bos_id(), 20);
  EXPECT_EQ(t->eos_id(), std::nullopt);
  EXPECT_EQ(t->pad_id(), std::nullopt);
  EXPECT_EQ(t->vocab_size(), 22);
}

TEST(TinyByteLevel, AddedTokensMatchBeforePreTokenization) {
  const auto t = Tokenizer::load(fixture("tiny-bytelevel"));
  EXPECT_EQ(t->encode("hello<|end|> world"), (Ids{12, 21, 17}));
  EXPECT_EQ(t->encode("<|end|><|end|>"), (Ids{21, 21}));
  // A malformed special token is text. Characters outside this tiny vocabulary (<, |, n) are
  // dropped, as Rust tokenizers does without an unk_token: "e" and "d" are left.
  EXPECT_EQ(t->encode("<|end"), (Ids{1, 6}));
  EXPECT_EQ(t->token_to_id("<|end|>"), 21);
  EXPECT_EQ(t->token_to_id("hello"), 12);
  EXPECT_EQ(t->token_to_id("nope"), std::nullopt);
}

TEST(TinyByteLevel, Decode) {
  const auto t = Tokenizer::load(fixture("tiny-bytelevel"));
  EXPECT_EQ(t->decode({20, 12, 17, 8}), "<|bos|>hello world!");
  EXPECT_EQ(t->decode({20, 12, 17, 8}, true), "hello world!");
  EXPECT_EQ(t->decode({}), "");
  EXPECT_THROW(t->decode({22}), Error);
  EXPECT_THROW(t->decode({-1}), Error);
}

// Rewrites a fixture's tokenizer.json into a temp folder.
class ModifiedFixture {
 public:
  ModifiedFixture(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    auto j = nlohmann::json::parse(read_file(fixture(name) / "tokenizer.json"));
    edit(j);
    write_file(dir_ / "tokenizer.json", j.dump(2));
  }
  std::filesystem::path dir() const { return dir_.path(); }
  std::filesystem::path file() const { return dir_ / "tokenizer.json"; }

 private:
  TempDir dir_;
};

TEST(TinyByteLevel, IgnoreMergesEmitsVocabularyWords) {
  ModifiedFixture f("tiny-bytelevel",
                    [](nlohmann::json& j) { j["model"]["ignore_merges"] = true; });
  const auto t = Tokenizer::load(f.dir());
  EXPECT_EQ(t->encode("ollo"), Ids{19});  // in the vocabulary: emitted whole
  EXPECT_EQ(t->encode("hello world!"), (Ids{12, 17, 8}));
}

TEST(TinyByteLevel, StringMergesEqualPairMerges) {
  ModifiedFixture f("tiny-bytelevel", [](nlohmann::json& j) {
    for (auto& m : j["model"]["merges"])
      m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  });
  const auto t = Tokenizer::load(f.dir());
  EXPECT_EQ(t->encode("hello world!ollo"), (Ids{12, 17, 8, 3, 10, 3}));
}

TEST(TinyByteLevel, InvalidUtf8EncodesTheRawBytes) {
  // Ill-formed bytes match no regex item: they form a pre-token of their own and go through
  // the byte map like any byte. This vocabulary lacks their characters, so they are dropped;
  // on a real byte-level vocabulary (test_edge_cases) every byte has a token.
  const auto t = Tokenizer::load(fixture("tiny-bytelevel"));
  EXPECT_EQ(t->encode("hello\xFFworld"), (Ids{12, 4, 14, 16}));
}

// SentencePiece-style fixture: <unk> <s> </s> <0xC3> <0xA9> ▁ a b c (0-8), ▁a ab ▁ab bc
// (9-12); merges a+b, ▁+ab, b+c, ▁+a; Prepend "▁" + Replace " " -> "▁"; byte fallback, fuse_unk.
TEST(TinySentencePiece, MergesByRankOnTheNormalizedText) {
  const auto t = Tokenizer::load(fixture("tiny-sp"));
  // "abc" -> "▁abc": ▁ a b c; a+b (rank 0) first: ▁ ab c; then ▁+ab (rank 1): ▁ab c.
  EXPECT_EQ(t->encode("abc"), (Ids{11, 8}));
  // "bc" -> "▁bc": b+c (rank 2): ▁ bc.
  EXPECT_EQ(t->encode("bc"), (Ids{5, 12}));
  EXPECT_EQ(t->encode(""), Ids{});  // Prepend leaves empty text empty
}

TEST(TinySentencePiece, ByteFallbackAndUnknown) {
  const auto t = Tokenizer::load(fixture("tiny-sp"));
  // "a é" -> "▁a▁é": é is not in the vocabulary, its bytes C3 A9 are.
  EXPECT_EQ(t->encode("a é"), (Ids{9, 5, 3, 4}));
  // ü = C3 BC: <0xBC> is missing, so it is <unk>; consecutive unknowns fuse into one.
  EXPECT_EQ(t->encode("ü"), (Ids{5, 0}));
  EXPECT_EQ(t->encode("üü"), (Ids{5, 0}));
  EXPECT_EQ(t->encode("üaü"), (Ids{5, 0, 6, 0}));
  // An ill-formed byte falls back to <0xNN> when that token exists, else <unk>.
  EXPECT_EQ(t->encode("a\xC3"), (Ids{9, 3}));
  EXPECT_EQ(t->encode("a\xFF"), (Ids{9, 0}));
}

TEST(TinySentencePiece, NormalizedSpecialTokensMatchTheirNormalizedForm) {
  // As in Rust tokenizers (and Llama-2's HF tokenizer.json), <s> and </s> are `normalized`,
  // so they are searched as "▁<s>" in the normalized text: found after a space only.
  const auto t = Tokenizer::load(fixture("tiny-sp"));
  EXPECT_EQ(t->encode("c </s>"), (Ids{5, 8, 2}));
  EXPECT_EQ(t->encode("</s>a"), (Ids{2, 6}));
}

TEST(TinySentencePiece, SpecialTokensFromTokenizerConfig) {
  const auto t = Tokenizer::load(fixture("tiny-sp"));
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->pad_id(), std::nullopt);
  EXPECT_EQ(t->encode("abc", true), (Ids{1, 11, 8}));
}

TEST(TinySentencePiece, LlamaClassAddEosTokenRebuildsTheTemplate) {
  // transformers' LlamaTokenizerFast applies add_bos_token / add_eos_token over the file.
  TempDir dir;
  write_file(dir / "tokenizer.json", read_file(fixture("tiny-sp") / "tokenizer.json"));
  auto config = nlohmann::json::parse(read_file(fixture("tiny-sp") / "tokenizer_config.json"));
  config["add_eos_token"] = true;
  config["add_bos_token"] = false;
  write_file(dir / "tokenizer_config.json", config.dump());
  EXPECT_EQ(Tokenizer::load(dir.path())->encode("abc", true), (Ids{11, 8, 2}));
}

TEST(TinySentencePiece, Decode) {
  const auto t = Tokenizer::load(fixture("tiny-sp"));
  EXPECT_EQ(t->decode({9, 5, 3, 4}), "a é");
  EXPECT_EQ(t->decode({1, 11, 8}), "<s> abc");
  EXPECT_EQ(t->decode({1, 11, 8}, true), "abc");
  EXPECT_EQ(t->decode({5, 3}), "\xEF\xBF\xBD");  // a lone <0xC3>: U+FFFD, as in HF
  for (const char* s : {"abc", "a é", " a  b", "cab ", "a é ab"}) {
    EXPECT_EQ(t->decode(t->encode(s)), s) << s;
  }
}

TEST(TinySentencePiece, MetaspacePreTokenizerAndDecoder) {
  // Mistral-style files: no normalizer, Metaspace(prepend_scheme first) instead.
  ModifiedFixture f("tiny-sp", [](nlohmann::json& j) {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"},
                          {"replacement", "\u2581"},
                          {"prepend_scheme", "first"},
                          {"split", false}};
    j["decoder"] = {{"type", "Metaspace"},
                    {"replacement", "\u2581"},
                    {"prepend_scheme", "first"},
                    {"split", false}};
    for (auto& t : j["added_tokens"]) t["normalized"] = false;
  });
  const auto t = Tokenizer::load(f.dir());
  EXPECT_EQ(t->encode("abc"), (Ids{11, 8}));
  EXPECT_EQ(t->encode("a é"), (Ids{9, 5, 3, 4}));
  // Only the text at the very start gets the "▁": after </s> it does not.
  EXPECT_EQ(t->encode("</s>abc"), (Ids{2, 10, 8}));
  EXPECT_EQ(t->decode(t->encode("abc bc")), "abc bc");
}

// --- malformed files: named errors ---------------------------------------------------------

std::string load_error(const std::filesystem::path& path) {
  try {
    Tokenizer::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_error(const std::string& fixture_name, const std::function<void(nlohmann::json&)>& edit,
                  const std::string& expected) {
  ModifiedFixture f(fixture_name, edit);
  const std::string message = load_error(f.dir());
  EXPECT_NE(message.find(f.file().string() + ": " + expected), std::string::npos)
      << "got: " << message << "\nexpected: " << expected;
}

TEST(TokenizerErrors, UnsupportedPiecesNameTheirJsonPath) {
  expect_error(
      "tiny-bytelevel",
      [](auto& j) {
        j["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Whitespace"}};
      },
      "pre_tokenizer.pretokenizers[1].type: unsupported 'Whitespace'");
  expect_error(
      "tiny-bytelevel", [](auto& j) { j["model"]["type"] = "WordPiece"; },
      "model.type: unsupported 'WordPiece'");
  expect_error(
      "tiny-bytelevel",
      [](auto& j) {
        j["normalizer"] = {{"type", "BertNormalizer"}};
      },
      "normalizer.type: unsupported 'BertNormalizer'");
  expect_error(
      "tiny-sp", [](auto& j) { j["decoder"]["decoders"][3]["type"] = "CTC"; },
      "decoder.decoders[3].type: unsupported 'CTC'");
  expect_error(
      "tiny-bytelevel",
      [](auto& j) {
        j["post_processor"] = {{"type", "Magic"}};
      },
      "post_processor.type: unsupported 'Magic'");
  expect_error(
      "tiny-bytelevel",
      [](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways"; },
      "pre_tokenizer.pretokenizers[0].behavior: unsupported 'Sideways'");
  expect_error(
      "tiny-bytelevel", [](auto& j) { j["model"]["dropout"] = 0.1; },
      "model.dropout: unsupported 0.1");
}

TEST(TokenizerErrors, MalformedPiecesNameTheirJsonPath) {
  expect_error(
      "tiny-bytelevel", [](auto& j) { j.erase("model"); }, "model: missing");
  expect_error(
      "tiny-bytelevel", [](auto& j) { j["model"].erase("vocab"); }, "model.vocab: missing");
  expect_error(
      "tiny-bytelevel", [](auto& j) { j["model"]["vocab"]["h"] = "zero"; },
      "model.vocab.h: expected a non-negative id");
  expect_error(
      "tiny-bytelevel",
      [](auto& j) {
        j["model"]["merges"][2] = {"he", "xx"};
      },
      "model.merges[2]: 'xx' is not in the vocabulary");
  expect_error(
      "tiny-sp", [](auto& j) { j["model"]["merges"][0] = "ab"; },
      "model.merges[0]: expected \"a b\"");
  expect_error(
      "tiny-bytelevel",
      [](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a"; },
      "pre_tokenizer.pretokenizers[0].pattern.Regex: invalid regex '(a'");
  expect_error(
      "tiny-bytelevel", [](auto& j) { j["added_tokens"][1].erase("content"); },
      "added_tokens[1].content: missing");
  expect_error(
      "tiny-sp", [](auto& j) { j["model"]["unk_token"] = "<nope>"; },
      "model.unk_token: '<nope>' is not in the vocabulary");
  expect_error(
      "tiny-bytelevel",
      [](auto& j) {
        j["post_processor"]["processors"][1]["special_tokens"] = nlohmann::json::object();
      },
      "post_processor.processors[1].special_tokens: no entry for '<|bos|>'");
}

TEST(TokenizerErrors, InvalidJsonNamesFileAndLine) {
  TempDir dir;
  write_file(dir / "tokenizer.json", "{\n  \"model\": {\n    \"vocab\": {\"a\": 0,}\n  }\n}\n");
  const std::string message = load_error(dir.path());
  EXPECT_NE(
      message.find((dir / "tokenizer.json").string() + ": invalid JSON: parse error at line 3"),
      std::string::npos)
      << message;
}

TEST(TokenizerErrors, NumberTooLargeForADoubleIsInvalidJson) {
  // nlohmann::json::parse throws out_of_range here, not parse_error; it escaped as an uncaught
  // exception until fuzz/tokenizer_json found it.
  TempDir dir;
  write_file(dir / "tokenizer.json", "{\"model\": {\"dropout\": 7e7777}}\n");
  EXPECT_EQ(load_error(dir.path()), (dir / "tokenizer.json").string() +
                                        ": invalid JSON: number overflow parsing '7e7777'");
}

TEST(TokenizerErrors, MissingFilesAreNamed) {
  TempDir dir;
  EXPECT_NE(
      load_error(dir.path()).find(dir.path().string() + ": no tokenizer.json or tokenizer.model"),
      std::string::npos);
  EXPECT_NE(load_error(dir / "absent.json")
                .find("tokenizer not found: " + (dir / "absent.json").string()),
            std::string::npos);
  write_file(dir / "tokenizer.model", "not a sentencepiece model");
  EXPECT_NE(load_error(dir.path())
                .find((dir / "tokenizer.model").string() + ": not a SentencePiece model"),
            std::string::npos)
      << load_error(dir.path());
}

TEST(TokenizerErrors, SpecialTokenMissingFromVocabulary) {
  TempDir dir;
  write_file(dir / "tokenizer.json", read_file(fixture("tiny-sp") / "tokenizer.json"));
  write_file(dir / "special_tokens_map.json", R"({"eos_token": {"content": "<|im_end|>"}})");
  EXPECT_NE(load_error(dir.path())
                .find((dir / "special_tokens_map.json").string() +
                      ": eos_token: '<|im_end|>' is not a token of"),
            std::string::npos)
      << load_error(dir.path());
}

TEST(TokenizerErrors, PostProcessorIdThatIsNoTokenIsNamed) {
  // tiny-bytelevel with <|bos|>'s added-token id edited from 20 to 10: its template still adds
  // id 20, which then is no token at all and could not be decoded (found by fuzz/tokenizer_json).
  TempDir dir;
  auto j = nlohmann::json::parse(read_file(fixture("tiny-bytelevel") / "tokenizer.json"));
  j["added_tokens"][0]["id"] = 10;
  write_file(dir / "tokenizer.json", j.dump());
  const std::string message = load_error(dir / "tokenizer.json");
  EXPECT_NE(message.find("post_processor"), std::string::npos) << message;
  EXPECT_NE(message.find("adds id 20, which is neither in the model's vocabulary nor an added token"),
            std::string::npos)
      << message;
}

TEST(TokenizerErrors, SpecialTokensMapWinsOverTokenizerConfig) {
  TempDir dir;
  write_file(dir / "tokenizer.json", read_file(fixture("tiny-sp") / "tokenizer.json"));
  write_file(dir / "tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": "</s>"})");
  write_file(dir / "special_tokens_map.json", R"({"eos_token": "<unk>", "pad_token": "</s>"})");
  const auto t = Tokenizer::load(dir.path());
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 0);
  EXPECT_EQ(t->pad_id(), 2);
}

// --- the pieces the tokenizers share ---------------------------------------------------------

TEST(Unicode, ByteToUnicodeIsGpt2s) {
  const auto& table = text::unicode::byte_to_utf8();
  EXPECT_EQ(table[' '], "\xC4\xA0");   // Ġ (U+0120)
  EXPECT_EQ(table['\n'], "\xC4\x8A");  // Ċ (U+010A)
  EXPECT_EQ(table['a'], "a");
  EXPECT_EQ(table[0xAD], "\xC5\x83");  // the last unprintable byte: U+0143
  for (int b = 0; b < 256; ++b) {
    size_t n;
    const int32_t cp = text::unicode::decode_char(table[b], 0, &n);
    EXPECT_EQ(text::unicode::unicode_to_byte(static_cast<char32_t>(cp)), b);
  }
}

TEST(Unicode, InvalidUtf8) {
  using text::unicode::to_valid_utf8;
  EXPECT_TRUE(text::unicode::is_valid_utf8("h\xC3\xA9"));
  EXPECT_FALSE(text::unicode::is_valid_utf8("\xC3"));
  EXPECT_FALSE(text::unicode::is_valid_utf8("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(text::unicode::is_valid_utf8("\xC0\xAF"));      // overlong
  // One U+FFFD per maximal ill-formed subpart, as Python's errors="replace".
  EXPECT_EQ(to_valid_utf8("a\xE2\x82z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(to_valid_utf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(text::unicode::normalize("e\xCC\x81\xFF", text::unicode::NormalForm::kNFC),
            "\xC3\xA9\xFF");
}

}  // namespace
}  // namespace bireco::test
