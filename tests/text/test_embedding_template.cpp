// EmbeddingTemplate: BOS, the template's head, the instructed text and the template's tail, each
// tokenized alone (what an exported tokenizer.json's post-processor gives); truncation cuts the
// text only; prefix_length counts BOS, header and instruction.
#include <gtest/gtest.h>

#include "bireco/text/embedding_template.h"
#include "bireco/util/error.h"
#include "text/text_test_support.h"

namespace bireco::test {
namespace {

using Ids = std::vector<int32_t>;
using text::EmbeddingTemplate;

config::TextConfig authors_config() {
  config::TextConfig c;  // the defaults are the authors' Llama-3 template and instruction format
  c.template_ = "<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>";
  c.instruction_format = "{instruction}; {text}";
  c.add_bos = true;
  c.add_eos = false;
  return c;
}

Ids concat(Ids a, const Ids& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string long_text() {
  // A SciFact abstract from the reference strings (several hundred tokens).
  std::string longest;
  for (const auto& r : read_tokenizations("llama3.2.jsonl")) {
    if (r.text.size() > longest.size()) longest = r.text;
  }
  return longest;
}

TEST(EmbeddingTemplate, Llama3IdsAreBosHeadTextTailEachTokenizedAlone) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const auto& tok = real_tokenizer("llama3.2");
  const EmbeddingTemplate t(tok, authors_config());
  const auto e = t.encode("Hello world", "", 512);
  // <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n Hello ␣world <|eot_id|>
  EXPECT_EQ(e.ids, (Ids{128000, 128006, 882, 128007, 271, 9906, 1917, 128009}));
  EXPECT_EQ(e.prefix_length, 5);
  const Ids head = tok.encode("<|start_header_id|>user<|end_header_id|>\n\n");
  EXPECT_EQ(t.head(), head);
  EXPECT_EQ(t.tail(), (Ids{128009}));
  for (const auto& r : read_tokenizations("llama3.2.jsonl")) {
    EXPECT_EQ(t.encode(r.text, "", 0).ids,
              concat(concat(concat({128000}, head), tok.encode(r.text)), {128009}))
        << nlohmann::json(r.text).dump();
    EXPECT_EQ(t.encode(r.text, "Retrieve a passage", 0).ids,
              concat(concat(concat({128000}, head), tok.encode("Retrieve a passage; " + r.text)),
                     {128009}))
        << nlohmann::json(r.text).dump();
  }
}

// The template's head is not merged with the text's first characters: HF's post-processor adds
// it as fixed ids, so bireco does too (tokenizing "Query: hello" at once gives " hello").
TEST(EmbeddingTemplate, HeadAndTextAreNotMergedAcrossTheirBoundary) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const auto& tok = real_tokenizer("qwen2.5");
  auto c = authors_config();
  c.template_ = "Query: {text}";
  const EmbeddingTemplate t(tok, c);
  const Ids separate = concat(tok.encode("Query: "), tok.encode("hello"));
  ASSERT_NE(separate, tok.encode("Query: hello"));
  EXPECT_EQ(t.encode("hello", "", 0).ids, separate);
  // Surrounding whitespace stays (sentence-transformers 6 does not strip either).
  EXPECT_EQ(t.encode("  hello  ", "", 0).ids,
            concat(tok.encode("Query: "), tok.encode("  hello  ")));
}

TEST(EmbeddingTemplate, InstructionPrefixIsTheQueryPrompt) {
  const auto tok = text::Tokenizer::load(data_dir() / "tokenizers" / "tiny-bytelevel");
  auto c = authors_config();
  c.template_ = "{text}";
  const EmbeddingTemplate t(*tok, c);
  EXPECT_EQ(t.instruction_prefix("Find {text} docs"), "Find {text} docs; ");
  EXPECT_EQ(t.instruction_prefix(""), "");
  EXPECT_EQ(t.instruction_suffix("Find"), "");
  c.instruction_format = "<{instruction}> {text} </{instruction}>";
  const EmbeddingTemplate both(*tok, c);
  EXPECT_EQ(both.instruction_prefix("a"), "<a> ");
  EXPECT_EQ(both.instruction_suffix("a"), " </a>");
  // The instructed text is tokenized as prompt + text, as sentence-transformers does.
  c.instruction_format = "{instruction} {text}";
  const EmbeddingTemplate spaced(*tok, c);
  EXPECT_EQ(spaced.encode("world!", "hello", 0).ids,
            concat({*tok->bos_id()}, tok->encode("hello world!")));
}

TEST(EmbeddingTemplate, Llama3TruncationKeepsHeaderInstructionAndEot) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const auto& tok = real_tokenizer("llama3.2");
  const EmbeddingTemplate t(tok, authors_config());
  const std::string text = long_text();
  const std::string instruction = "Given a scientific claim, retrieve documents that support it";
  const auto whole = t.encode(text, instruction, 0);
  ASSERT_GT(whole.ids.size(), 64u);
  const auto head = concat(
      {128000}, tok.encode("<|start_header_id|>user<|end_header_id|>\n\n" + instruction + ";"));
  for (const int64_t max_length :
       {int64_t{64}, int64_t{33}, static_cast<int64_t>(head.size()) + 2}) {
    const auto cut = t.encode(text, instruction, max_length);
    ASSERT_EQ(static_cast<int64_t>(cut.ids.size()), max_length);
    EXPECT_EQ(cut.ids.back(), 128009) << max_length;  // <|eot_id|> survives
    EXPECT_EQ(cut.prefix_length, whole.prefix_length);
    // The kept ids are the start of the untruncated ones, then <|eot_id|>.
    EXPECT_EQ(Ids(cut.ids.begin(), cut.ids.end() - 1),
              Ids(whole.ids.begin(), whole.ids.begin() + max_length - 1));
    EXPECT_EQ(Ids(cut.ids.begin(), cut.ids.begin() + static_cast<long>(head.size())), head);
  }
  // The header, instruction and "; " are the prefix: BOS + 4 header ids + instruction + ";".
  EXPECT_EQ(whole.prefix_length, static_cast<int64_t>(head.size()));
}

TEST(EmbeddingTemplate, Llama3AddEosAfterTheTemplate) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  auto c = authors_config();
  c.add_eos = true;
  const EmbeddingTemplate t(real_tokenizer("llama3.2"), c);
  const auto e = t.encode(long_text(), "", 20);
  ASSERT_EQ(e.ids.size(), 20u);
  EXPECT_EQ(e.ids[18], 128009);
  EXPECT_EQ(e.ids[19], 128001);
  EXPECT_EQ(t.encode("Hi", "", 0).ids.back(), 128001);
}

TEST(EmbeddingTemplate, QwenTemplateStringsArePlainText) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const auto& tok = real_tokenizer("qwen2.5");
  const EmbeddingTemplate t(tok, authors_config());
  const std::string close = "<|eot_id|>";
  const Ids close_ids = tok.encode(close);
  EXPECT_GT(close_ids.size(), 1u);  // not a token of Qwen: several pieces of text
  const Ids header = tok.encode("<|start_header_id|>user<|end_header_id|>\n\n");
  for (const auto& r : read_tokenizations("qwen2.5.jsonl")) {
    const auto e = t.encode(r.text, "", 0);
    EXPECT_EQ(e.ids, concat(concat(header, tok.encode(r.text)), close_ids))  // Qwen has no BOS
        << nlohmann::json(r.text).dump();
  }
  const auto cut = t.encode(long_text(), "Find evidence", 40);
  ASSERT_EQ(cut.ids.size(), 40u);
  EXPECT_EQ(Ids(cut.ids.end() - static_cast<long>(close_ids.size()), cut.ids.end()), close_ids);
  const auto head = tok.encode("<|start_header_id|>user<|end_header_id|>\n\nFind evidence;");
  EXPECT_EQ(Ids(cut.ids.begin(), cut.ids.begin() + static_cast<long>(head.size())), head);
  EXPECT_EQ(cut.prefix_length, static_cast<int64_t>(head.size()));
}

TEST(EmbeddingTemplate, TextMergingWithTheCloseStillKeepsTheClose) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  // On Qwen, "." + "<|" would pre-tokenize together in the whole string; the close is tokenized
  // alone, truncated or not.
  const auto& tok = real_tokenizer("qwen2.5");
  const EmbeddingTemplate t(tok, authors_config());
  const std::string text = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten.";
  const Ids close_ids = tok.encode("<|eot_id|>");
  const auto whole = t.encode(text, "", 0);
  const auto cut = t.encode(text, "", static_cast<int64_t>(whole.ids.size()) - 3);
  EXPECT_EQ(cut.ids.size(), whole.ids.size() - 3);
  EXPECT_EQ(Ids(cut.ids.end() - static_cast<long>(close_ids.size()), cut.ids.end()), close_ids);
}

TEST(EmbeddingTemplate, EmptyInstructionMeansNone) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  const auto& tok = real_tokenizer("llama3.2");
  const EmbeddingTemplate t(tok, authors_config());
  EXPECT_EQ(
      t.encode("abc", "", 0).ids,
      concat({128000}, tok.encode("<|start_header_id|>user<|end_header_id|>\n\nabc<|eot_id|>")));
}

TEST(EmbeddingTemplate, FixtureTemplateAndErrors) {
  const auto tok = text::Tokenizer::load(data_dir() / "tokenizers" / "tiny-bytelevel");
  config::TextConfig c;
  c.template_ = "{text}<|end|>";
  c.instruction_format = "{instruction} {text}";
  c.add_bos = true;
  const EmbeddingTemplate t(*tok, c);
  // <|bos|> hello Ġworld ! <|end|>
  EXPECT_EQ(t.encode("hello world!", "", 0).ids, (Ids{20, 12, 17, 8, 21}));
  EXPECT_EQ(t.encode("hello world!", "", 0).prefix_length, 1);
  EXPECT_EQ(t.encode("world!", "hello", 0).ids, (Ids{20, 12, 17, 8, 21}));
  EXPECT_EQ(t.encode("world!", "hello", 0).prefix_length, 2);
  EXPECT_EQ(t.encode("hello world!", "", 3).ids, (Ids{20, 12, 21}));
  EXPECT_EQ(t.encode("hello world!", "", 2).ids, (Ids{20, 21}));
  EXPECT_THROW(t.encode("hello world!", "", 1), Error);  // no room for BOS + <|end|>
  EXPECT_EQ(t.encode("", "", 0).ids, (Ids{20, 21}));

  c.template_ = "no placeholder";
  EXPECT_THROW(EmbeddingTemplate(*tok, c), Error);
  c.template_ = "{text}";
  c.instruction_format = "{text} only";
  const EmbeddingTemplate no_instruction(*tok, c);
  EXPECT_THROW(no_instruction.encode("hello", "an instruction", 0), Error);
}

}  // namespace
}  // namespace bireco::test
