// TFRecord framing and hand-encoded Event protobufs (see tensorboard.h for why by hand).
#include "bireco/util/tensorboard.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "bireco/util/error.h"

namespace bireco::util {
namespace {

std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

void put_fixed(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Protobuf wire format: a varint, a tag (field number << 3 | wire type), length-delimited bytes.
void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field << 3 | wire_type));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_double(std::string& out, int field, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  put_tag(out, field, 1);
  put_fixed(out, bits, 8);
}
void put_float(std::string& out, int field, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  put_tag(out, field, 5);
  put_fixed(out, bits, 4);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::string tfrecord(const std::string& data) {
  std::string out;
  put_fixed(out, data.size(), 8);
  put_fixed(out, masked_crc32c(out.data(), 8), 4);
  out += data;
  put_fixed(out, masked_crc32c(data.data(), data.size()), 4);
  return out;
}

std::string scalar_event(double wall_time, int64_t step,
                         const std::vector<std::pair<std::string, double>>& scalars) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string v;
    put_bytes(v, 1, tag);                        // Summary.Value.tag
    put_float(v, 2, static_cast<float>(value));  // Summary.Value.simple_value
    put_bytes(summary, 1, v);                    // Summary.value (repeated)
  }
  std::string event;
  put_double(event, 1, wall_time);  // Event.wall_time
  put_tag(event, 2, 0);             // Event.step (int64 varint)
  put_varint(event, static_cast<uint64_t>(step));
  put_bytes(event, 5, summary);  // Event.summary
  return event;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create folder " + dir.string() + ": " + ec.message());
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  const double start = now_seconds();
  path_ = dir / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(start)) + "." + host +
                 "." + std::to_string(::getpid()));
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr)
    throw Error("cannot open " + path_.string() + " for writing: " + std::strerror(errno));
  std::string version;
  put_double(version, 1, start);
  put_bytes(version, 3, "brain.Event:2");  // Event.file_version: what readers check first
  append(tfrecord(version));
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::write(int64_t step,
                              const std::vector<std::pair<std::string, double>>& scalars) {
  if (file_ == nullptr || scalars.empty()) return;
  append(tfrecord(scalar_event(now_seconds(), step, scalars)));
}

void TensorBoardWriter::append(const std::string& record) {
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() ||
      std::fflush(file_) != 0)
    throw Error("cannot write to " + path_.string() + ": " + std::strerror(errno));
}

}  // namespace bireco::util
