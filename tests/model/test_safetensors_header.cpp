// The torch-free safetensors header parser on hand-written headers: entries and metadata as
// written, and shapes whose byte count overflows 64 bits (found by fuzz/safetensors_header)
// rejected instead of matching an empty byte range; deep nesting named without recursing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bireco/model/safetensors_header.h"
#include "test_support.h"

namespace bireco::model {
namespace {
using ::bireco::test::error_of;

// A file image: little-endian header length, the header, `data_bytes` zero bytes.
std::vector<uint8_t> file_with(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> bytes;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>((n >> (8 * i)) & 0xff));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.resize(bytes.size() + data_bytes, 0);
  return bytes;
}

SafetensorsHeader parse(const std::vector<uint8_t>& bytes) {
  return parse_safetensors_header(bytes.data(), bytes.size(), "t.safetensors");
}

std::string parse_error(const std::string& header, size_t data_bytes) {
  const auto bytes = file_with(header, data_bytes);
  return error_of([&] { parse(bytes); });
}

TEST(SafetensorsHeader, EntriesAndMetadataAsWritten) {
  const std::string header =
      R"({"__metadata__":{"format":"pt","n":3},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
      R"("a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}})";
  const auto bytes = file_with(header, 14);
  const SafetensorsHeader h = parse(bytes);
  ASSERT_EQ(h.entries.size(), 2u);
  EXPECT_EQ(h.entries[0].name, "a");  // nlohmann::json objects iterate by name
  EXPECT_EQ(h.entries[0].dtype, "F32");
  EXPECT_EQ(h.entries[0].shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(h.entries[1].begin, 8u);
  EXPECT_EQ(h.entries[1].end, 14u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.metadata.count("n"), 0u);  // only string values are metadata
  EXPECT_EQ(h.data_offset, 8 + header.size());
}

TEST(SafetensorsHeader, ShapeWhoseByteCountWrapsTo0IsRejected) {
  // 2^62 F32 elements are 2^64 bytes, 0 modulo 2^64: an empty range must not match them.
  const auto msg = parse_error(
      R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0);
  EXPECT_NE(msg.find("`w`"), std::string::npos) << msg;
  EXPECT_NE(msg.find("more than 2^64"), std::string::npos) << msg;
}

TEST(SafetensorsHeader, ShapeProductPastInt64IsRejected) {
  const auto msg = parse_error(
      R"({"w":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})", 0);
  EXPECT_NE(msg.find("more than 2^64"), std::string::npos) << msg;
}

TEST(SafetensorsHeader, ZeroDimensionMakesAnyShapeEmpty) {
  const auto bytes = file_with(
      R"({"w":{"dtype":"F64","shape":[4611686018427387904,4,0],"data_offsets":[0,0]}})", 0);
  EXPECT_EQ(parse(bytes).entries.at(0).shape.back(), 0);
}

TEST(SafetensorsHeader, DimensionPastInt64IsInvalid) {
  const auto msg = parse_error(
      R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0);
  EXPECT_NE(msg.find("invalid shape"), std::string::npos) << msg;
}

TEST(SafetensorsHeader, ShapeMustBeAList) {
  // nlohmann::json iterates an object's values (and a number as itself): {"d": 4} is no shape.
  EXPECT_NE(parse_error(R"({"w":{"dtype":"F32","shape":{"d":1},"data_offsets":[0,4]}})", 4)
                .find("invalid shape"),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", 4)
                .find("invalid shape"),
            std::string::npos);
}

TEST(SafetensorsHeader, DeeplyNestedShapeIsAnErrorNotAStackOverflow) {
  // The message used to dump() the shape, which recurses once per level.
  const std::string nested = std::string(300000, '[') + std::string(300000, ']');
  const auto msg = parse_error(R"({"w":{"dtype":"F32","shape":)" + nested + R"(,"data_offsets":[0,0]}})", 0);
  EXPECT_NE(msg.find("`w` has an invalid shape [[[[[...]]]]]"), std::string::npos) << msg.substr(0, 200);
}

TEST(SafetensorsHeader, FileShorterThanTheLengthFieldIsNamed) {
  const std::vector<uint8_t> bytes = {1, 2, 3};
  const auto msg = error_of([&] { parse(bytes); });
  EXPECT_NE(msg.find("t.safetensors: not a safetensors file (3 bytes"), std::string::npos) << msg;
}

}  // namespace
}  // namespace bireco::model
