// Config documents the fuzzer (fuzz/config_document) or a hand-made hostile file broke: each is
// a bireco::Error naming the line, or a value read as YAML's core schema says, never a crash,
// a foreign exception or gigabytes of memory.
#include <gtest/gtest.h>

#include <string>

#include "bireco/config/document.h"
#include "bireco/config/load.h"
#include "bireco/util/error.h"
#include "test_support.h"

namespace bireco::config {
namespace {
using ::bireco::test::error_of;

TEST(YamlInputs, InvalidUtf8IsAnErrorNamingTheLine) {
  const auto msg = error_of([] { parse_yaml_text("train:\n  max_steps: \xdf\xdf\n", "s.yaml"); });
  EXPECT_NE(msg.find("s.yaml: line 2: invalid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { parse_yaml_text("\xff: 1\n", "s.yaml"); }).find("invalid UTF-8"),
            std::string::npos);
}

TEST(YamlInputs, FloatOutOfRangeStaysTextAndIsATypeError) {
  // std::stod throws std::out_of_range for these; YAML gives no double for them either.
  const Document doc = parse_yaml_text("a: 1e999\nb: -1e-999\nc: 1.5e3\n");
  EXPECT_EQ(doc.root["a"], "1e999");
  EXPECT_EQ(doc.root["b"], "-1e-999");
  EXPECT_DOUBLE_EQ(doc.root["c"].get<double>(), 1500.0);
  const auto msg = error_of([] { read_stage(parse_yaml_text("optim: {lr: 1e999}\n", "s.yaml")); });
  EXPECT_NE(msg.find("optim.lr"), std::string::npos) << msg;
}

TEST(YamlInputs, CoreSchemaNumberForms) {
  const Document doc = parse_yaml_text(
      "i: -12\nj: +7\nf: .5\ng: 3.\nh: 2e-3\nx: .\ny: 1e\nz: 1.2.3\nw: e5\n");
  EXPECT_EQ(doc.root["i"], -12);
  EXPECT_EQ(doc.root["j"], 7);
  EXPECT_DOUBLE_EQ(doc.root["f"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(doc.root["g"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(doc.root["h"].get<double>(), 0.002);
  for (const char* key : {"x", "y", "z", "w"}) EXPECT_TRUE(doc.root[key].is_string()) << key;
}

TEST(YamlInputs, HundredThousandDigitScalarDoesNotExhaustTheStack) {
  // std::regex_match recursed once per character here and overflowed the stack.
  const std::string digits(100000, '7');
  const Document doc = parse_yaml_text("a: " + digits + "\nb: 1." + digits + "\n");
  EXPECT_EQ(doc.root["a"], digits);  // past int64: kept as text, as before
  EXPECT_TRUE(doc.root["b"].is_number_float());
}

TEST(ConfigInputs, NestingPast64LevelsIsAnErrorNamingTheLine) {
  // Each level kept its key path: 300k levels of [ took > 2 GB before the limit.
  const auto nested = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_NO_THROW(parse_json_text("{\"a\": " + nested(63) + "}"));
  EXPECT_NO_THROW(parse_yaml_text("a: " + nested(63)));
  const auto json_msg = error_of([&] { parse_json_text("{\"a\":\n" + nested(300000) + "}", "s.json"); });
  EXPECT_NE(json_msg.find("s.json: invalid JSON: line 2: nested deeper than 64 levels"), std::string::npos)
      << json_msg;
  const auto yaml_msg = error_of([&] { parse_yaml_text("a: " + nested(100), "s.yaml"); });
  EXPECT_NE(yaml_msg.find("nested deeper than 64 levels"), std::string::npos) << yaml_msg;
}

}  // namespace
}  // namespace bireco::config
