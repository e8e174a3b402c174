// XXH64, the 64-bit xxHash (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md):
// the checksum of checkpoint manifests. Chosen over CRC32C/zlib because it needs no new
// dependency, is ~40 lines of portable code, and runs at memory speed (several GB/s on one
// core) where a table-driven CRC manages under 1 GB/s; it detects truncation and bit rot, not
// tampering (it is not cryptographic).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace bireco::util {

uint64_t xxhash64(const void* data, size_t bytes, uint64_t seed = 0);

// XXH64 of a whole file (memory-mapped); Error naming the file when it cannot be read.
uint64_t xxhash64_file(const std::filesystem::path& file);

}  // namespace bireco::util
