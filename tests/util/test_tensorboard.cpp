// The TensorBoard event writer's pieces against hand-computed bytes (TensorBoard's own reader
// reads a training run's files in tests/train/test_evaluation.cpp).
#include <gtest/gtest.h>

#include <cstring>

#include "bireco/util/metrics.h"
#include "bireco/util/tensorboard.h"
#include "test_support.h"

namespace bireco::util {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

TEST(TensorBoard, Crc32cOfTheStandardCheckString) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value (RFC 3720, B.4)
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(TensorBoard, RecordIsLengthCrcDataCrc) {
  const std::string record = tfrecord("abc");
  ASSERT_EQ(record.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(record.substr(0, 8), bytes({3, 0, 0, 0, 0, 0, 0, 0}));
  auto masked = [](uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; };
  uint32_t length_crc, data_crc;
  std::memcpy(&length_crc, record.data() + 8, 4);
  std::memcpy(&data_crc, record.data() + 15, 4);
  EXPECT_EQ(length_crc, masked(crc32c(record.data(), 8)));
  EXPECT_EQ(record.substr(12, 3), "abc");
  EXPECT_EQ(data_crc, masked(crc32c("abc", 3)));
}

TEST(TensorBoard, ScalarEventEncodesTheProtobufFields) {
  // Event{wall_time: 1.0 (field 1, fixed64), step: 3 (field 2, varint), summary (field 5) {
  //   value (field 1) {tag: "a" (field 1), simple_value: 0.5f (field 2, fixed32)}}}
  const std::string expected =
      bytes({0x09, 0,    0,    0,    0,    0,   0,    0xF0, 0x3F, 0x10, 0x03, 0x2A,
             0x0A, 0x0A, 0x08, 0x0A, 0x01, 'a', 0x15, 0,    0,    0,    0x3F});
  EXPECT_EQ(scalar_event(1.0, 3, {{"a", 0.5}}), expected);
}

TEST(TensorBoard, MetricsWriterWritesAnEventFileBesideMetricsJsonl) {
  test::TempDir tmp;
  {
    MetricsWriter m(tmp / "run");
    m.write({{"step", 1}, {"loss", 2.5}, {"note", "text"}});
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(tmp / "run" / "tensorboard"))
    files.push_back(entry.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].filename().string().rfind("events.out.tfevents.", 0), 0u);
  const std::string content = test::read_file(files[0]);
  // The file_version record, then one event holding "loss" (the string is not a scalar).
  EXPECT_NE(content.find("brain.Event:2"), std::string::npos);
  EXPECT_NE(content.find("loss"), std::string::npos);
  EXPECT_EQ(content.find("note"), std::string::npos);
}

}  // namespace
}  // namespace bireco::util
