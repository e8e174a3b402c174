// The safetensors header parser on raw file bytes. Whatever it accepts must be safe for the
// mmap reader to hand out: every entry's byte range inside the data section and exactly as
// long as its dtype and shape need.
#include <cstdint>

#include "bireco/model/safetensors_header.h"
#include "bireco/util/error.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bireco::model;
  SafetensorsHeader header;
  try {
    header = parse_safetensors_header(data, size, "fuzz.safetensors");
  } catch (const bireco::Error&) {
    return 0;
  }
  BIRECO_FUZZ_CHECK(header.data_offset >= 8 && header.data_offset <= size);
  const size_t data_size = size - header.data_offset;
  for (const SafetensorsEntry& e : header.entries) {
    BIRECO_FUZZ_CHECK(e.begin <= e.end && e.end <= data_size);
    // The same product in 128 bits, capped just past 2^64 (a capped value times a dimension
    // < 2^63 still fits): no wrap-around can make it match a range.
    const unsigned __int128 cap = static_cast<unsigned __int128>(1) << 64;
    unsigned __int128 bytes = safetensors_dtype_size(e.dtype);
    BIRECO_FUZZ_CHECK(bytes != 0);
    for (int64_t d : e.shape) {
      BIRECO_FUZZ_CHECK(d >= 0);
      bytes *= static_cast<uint64_t>(d);
      if (bytes > cap) bytes = cap;
    }
    BIRECO_FUZZ_CHECK(bytes == e.end - e.begin);
  }
  return 0;
}
