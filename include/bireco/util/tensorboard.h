// TensorBoard event files (events.out.tfevents.*): scalars as TensorBoard's own reader expects
// them, written as a run goes. Debian packages no C++ writer for this format (only TensorFlow or
// protobuf-generated code would do, and neither is a dependency), and the format is small: a
// TFRecord framing of hand-encoded `Event` protobuf messages, below.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace bireco::util {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord checksums use it.
uint32_t crc32c(const void* data, size_t size);

// One TFRecord: uint64 length (little-endian), masked CRC-32C of those 8 bytes, the data,
// masked CRC-32C of the data; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
std::string tfrecord(const std::string& data);

// The protobuf bytes of tensorflow.Event{wall_time, step, summary{value{tag, simple_value}}}
// (event.proto fields 1, 2 and 5; summary.proto Value fields 1 and 2). simple_value is a float:
// TensorBoard shows float32 values.
std::string scalar_event(double wall_time, int64_t step,
                         const std::vector<std::pair<std::string, double>>& scalars);

class TensorBoardWriter {
 public:
  TensorBoardWriter() = default;  // writes nothing
  // A new events.out.tfevents.<seconds>.<host>.<pid> file in `dir` (created), starting with the
  // file_version record TensorBoard expects. A resumed run adds a file; TensorBoard merges them.
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event with every scalar at `step`, flushed at once (a killed run keeps what it logged).
  void write(int64_t step, const std::vector<std::pair<std::string, double>>& scalars);
  const std::filesystem::path& path() const { return path_; }

 private:
  void append(const std::string& record);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

}  // namespace bireco::util
