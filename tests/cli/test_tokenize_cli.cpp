// `bireco tokenize` end to end: one output line per input line, in order; --decode; bad
// lines named by file and line; the SentencePiece shim missing is a clear error.
#include <gtest/gtest.h>

#include "test_support.h"

namespace bireco::test {
namespace {

std::string bireco(const std::string& args) { return bireco_binary().string() + " " + args; }

std::string tiny() { return (data_dir() / "tokenizers" / "tiny-bytelevel").string(); }

TEST(TokenizeCli, EncodesEachLineInOrder) {
  TempDir tmp;
  write_file(tmp / "texts.jsonl",
             "{\"text\": \"hello world!\"}\n{\"text\": \"\"}\n{\"text\": \"ollo<|end|>\"}\n");
  auto r = run_command(
      bireco("tokenize --tokenizer " + tiny() + " --input " + (tmp / "texts.jsonl").string()));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "{\"ids\":[12,17,8]}\n{\"ids\":[]}\n{\"ids\":[3,10,3,21]}\n");
  r = run_command(bireco("tokenize --add-special-tokens --tokenizer " + tiny() +
                         "/tokenizer.json --input " + (tmp / "texts.jsonl").string()));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "{\"ids\":[20,12,17,8]}\n{\"ids\":[20]}\n{\"ids\":[20,3,10,3,21]}\n");
}

TEST(TokenizeCli, ManyLinesKeepTheirOrder) {
  TempDir tmp;
  std::string input, expected;
  for (int i = 0; i < 10000; ++i) {
    input += i % 2 ? "{\"text\": \"hello\"}\n" : "{\"text\": \"world world\"}\n";
    expected += i % 2 ? "{\"ids\":[12]}\n" : "{\"ids\":[4,14,16,17]}\n";
  }
  write_file(tmp / "texts.jsonl", input);
  const auto r = run_command(
      bireco("tokenize --tokenizer " + tiny() + " --input " + (tmp / "texts.jsonl").string()));
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.output == expected) << r.output.substr(0, 200);
}

TEST(TokenizeCli, Decodes) {
  TempDir tmp;
  write_file(tmp / "ids.jsonl", "{\"ids\": [20, 12, 17, 8]}\n{\"ids\": []}\n");
  const auto r = run_command(bireco("tokenize --decode --tokenizer " + tiny() + " --input " +
                                    (tmp / "ids.jsonl").string()));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "{\"text\":\"<|bos|>hello world!\"}\n{\"text\":\"\"}\n");
}

TEST(TokenizeCli, BadLinesNameFileAndLine) {
  TempDir tmp;
  const std::string file = (tmp / "texts.jsonl").string();
  write_file(tmp / "texts.jsonl", "{\"text\": \"hello\"}\n{\"txt\": \"hello\"}\n");
  auto r = run_command(bireco("tokenize --tokenizer " + tiny() + " --input " + file));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("error: " + file + ":2: expected {\"text\": \"...\"}"), std::string::npos)
      << r.output;
  write_file(tmp / "texts.jsonl", "{\"text\": \"hello\"}\n\n{\"text\": 3");
  r = run_command(bireco("tokenize --tokenizer " + tiny() + " --input " + file));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("error: " + file + ":2: invalid JSON"), std::string::npos) << r.output;
  write_file(tmp / "texts.jsonl", "{\"ids\": [1]}\n{\"ids\": [1, 99]}\n");
  r = run_command(bireco("tokenize --decode --tokenizer " + tiny() + " --input " + file));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("error: " + file + ":2: id 99 is not in the vocabulary (size 22)"),
            std::string::npos)
      << r.output;
  r = run_command(bireco("tokenize --tokenizer " + tiny() + " --input /nonexistent.jsonl"));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.output, "error: cannot read /nonexistent.jsonl\n");
}

TEST(TokenizeCli, RealTokenizers) {
  BIRECO_REQUIRE_SHARED("realdata/tokenizers");
  TempDir tmp;
  write_file(tmp / "texts.jsonl", "{\"text\": \"Hello world\"}\n{\"text\": \"<|eot_id|>\"}\n");
  const auto tokenizers = shared_dir() / "realdata" / "tokenizers";
  auto r = run_command(bireco("tokenize --add-special-tokens --tokenizer " +
                              (tokenizers / "llama3.2").string() + " --input " +
                              (tmp / "texts.jsonl").string()));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "{\"ids\":[128000,9906,1917]}\n{\"ids\":[128000,128009]}\n");
  r = run_command(bireco("tokenize --add-special-tokens --tokenizer " +
                         (tokenizers / "llama2-sp").string() + " --input " +
                         (tmp / "texts.jsonl").string()));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, 27), "{\"ids\":[1,15043,3186]}\n{\"id") << r.output;
}

}  // namespace
}  // namespace bireco::test
