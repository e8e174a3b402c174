// The torch-free half of reading a .safetensors file: the 8-byte length and the JSON header,
// validated against the file size. The mmap reader (safetensors.h) calls it; so do the
// sanitizer tests and the fuzzer, which build without LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bireco::model {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // the format's name: "F32", "BF16", ... (one of safetensors_dtype_size's)
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte offsets relative to the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in the order the JSON object iterates (by name)
  std::map<std::string, std::string> metadata;  // `__metadata__`'s string values
  size_t data_offset = 0;                       // 8 + header length
};

// Bytes per element of a dtype name bireco reads ("F32" -> 4); 0 for any other name.
size_t safetensors_dtype_size(const std::string& dtype);

// Parses the header at the start of a file of `file_size` bytes (`bytes` holds all of them).
// Every check of the format is a bireco::Error starting with `where` (the file name): the
// header length against the file size, JSON syntax, every dtype, every shape against its
// byte range, every range inside the data.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t file_size,
                                           const std::string& where);

}  // namespace bireco::model
