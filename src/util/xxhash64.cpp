// XXH64 as specified in xxHash's doc/xxhash_spec.md (little-endian reads, 32-byte stripes).
#include "bireco/util/xxhash64.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "bireco/util/error.h"

namespace bireco::util {
namespace {

// The spec's five primes.
constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full,
                   kP3 = 0x165667B19E3779F9ull, kP4 = 0x85EBCA77C2B2AE63ull,
                   kP5 = 0x27D4EB2F165667C5ull;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

template <class T>
T read_le(const uint8_t* p) {  // x86 and arm64 are little-endian, as the spec reads
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t round(uint64_t acc, uint64_t lane) { return rotl(acc + lane * kP2, 31) * kP1; }
uint64_t merge(uint64_t acc, uint64_t v) { return (acc ^ round(0, v)) * kP1 + kP4; }

}  // namespace

uint64_t xxhash64(const void* data, size_t bytes, uint64_t seed) {
  // Offsets, not pointers compared with an end pointer: `data` may be null when bytes == 0,
  // and null + 8 is undefined behaviour even when never read (UBSan reports it).
  const auto* p = static_cast<const uint8_t*>(data);
  size_t i = 0;
  uint64_t h;
  if (bytes >= 32) {
    uint64_t v1 = seed + kP1 + kP2, v2 = seed + kP2, v3 = seed, v4 = seed - kP1;
    for (; bytes - i >= 32; i += 32) {
      v1 = round(v1, read_le<uint64_t>(p + i));
      v2 = round(v2, read_le<uint64_t>(p + i + 8));
      v3 = round(v3, read_le<uint64_t>(p + i + 16));
      v4 = round(v4, read_le<uint64_t>(p + i + 24));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else {
    h = seed + kP5;
  }
  h += bytes;
  for (; bytes - i >= 8; i += 8) h = rotl(h ^ round(0, read_le<uint64_t>(p + i)), 27) * kP1 + kP4;
  if (bytes - i >= 4) {
    h = rotl(h ^ (read_le<uint32_t>(p + i) * kP1), 23) * kP2 + kP3;
    i += 4;
  }
  for (; i < bytes; ++i) h = rotl(h ^ (p[i] * kP5), 11) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint64_t xxhash64_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(file.string() + ": cannot stat: " + std::strerror(errno));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return xxhash64(nullptr, 0);
  }
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (data == MAP_FAILED) throw Error(file.string() + ": mmap failed: " + std::strerror(errno));
  ::madvise(data, size, MADV_SEQUENTIAL);
  const uint64_t h = xxhash64(data, size);
  ::munmap(data, size);
  return h;
}

}  // namespace bireco::util
