// Safetensors header parsing (https://github.com/huggingface/safetensors#format), without
// LibTorch: model/safetensors.cpp maps the file and turns these entries into tensors.
#include "bireco/model/safetensors_header.h"

#include <nlohmann/json.hpp>

#include <limits>
#include <utility>

#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::model {
namespace {

using nlohmann::json;

// The dtypes bireco reads, with their element sizes (safetensors.cpp maps the same names to
// torch::ScalarType).
const std::vector<std::pair<std::string, size_t>> kDtypeSizes = {
    {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U8", 1},  {"BOOL", 1}};

// A header above this is certainly corrupt (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// A non-negative integer that fits an int64_t; a float, a negative number or one past
// 2^63 - 1 is not a dimension.
bool is_dimension(const json& d) {
  if (d.is_number_unsigned()) {
    return d.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  return d.is_number_integer() && d.get<int64_t>() >= 0;
}

SafetensorsEntry parse_entry(const std::string& name, const json& entry, size_t data_size,
                             const std::string& where) {
  const std::string what = where + ": tensor `" + name + "`";
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets"))
    throw Error(what + " needs dtype, shape and data_offsets");
  SafetensorsEntry out;
  out.name = name;
  const json& dtype = entry["dtype"];
  out.dtype = dtype.is_string() ? dtype.get<std::string>() : "?";
  const size_t element_size = safetensors_dtype_size(out.dtype);
  if (element_size == 0) throw Error(what + " has unsupported dtype `" + out.dtype + "`");

  const json& shape = entry["shape"];
  if (!shape.is_array()) throw Error(what + " has an invalid shape " + util::json_excerpt(shape));
  // The byte count in unsigned 64-bit arithmetic, checked at each step: a shape whose
  // product overflows must not wrap around to a size that matches its range.
  uint64_t bytes = element_size;
  bool overflow = false, empty = false;
  for (const json& d : shape) {
    if (!is_dimension(d)) throw Error(what + " has an invalid shape " + util::json_excerpt(shape));
    const auto dim = d.get<int64_t>();
    out.shape.push_back(dim);
    empty = empty || dim == 0;
    if (dim != 0 && bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim)) {
      overflow = true;
    }
    bytes *= static_cast<uint64_t>(dim);
  }
  const json& off = entry["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    throw Error(what + " has invalid data_offsets " + util::json_excerpt(off));
  out.begin = off[0].get<size_t>();
  out.end = off[1].get<size_t>();
  if (out.end < out.begin || out.end > data_size)
    throw Error(what + " has data_offsets [" + std::to_string(out.begin) + ", " +
                std::to_string(out.end) + "] past the end of the data (" +
                std::to_string(data_size) + " bytes; truncated file?)");
  // A zero dimension makes the tensor empty whatever the other dimensions' product was.
  if (empty) overflow = false, bytes = 0;
  if (overflow || out.end - out.begin != bytes)
    throw Error(what + " holds " + std::to_string(out.end - out.begin) + " bytes but dtype " +
                out.dtype + " and shape " + util::json_excerpt(shape) + " need " +
                (overflow ? std::string("more than 2^64") : std::to_string(bytes)));
  return out;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  for (const auto& [name, size] : kDtypeSizes)
    if (name == dtype) return size;
  return 0;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t file_size,
                                           const std::string& where) {
  if (file_size < 8)
    throw Error(where + ": not a safetensors file (" + std::to_string(file_size) +
                " bytes, shorter than the 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > kMaxHeaderBytes || 8 + header_len > file_size)
    throw Error(where + ": header length " + std::to_string(header_len) +
                " exceeds the file size " + std::to_string(file_size) +
                " (truncated or not a safetensors file)");
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const json::exception& e) {
    throw Error(where + ": header is not valid JSON: " + util::json_error_text(e));
  }
  if (!header.is_object()) throw Error(where + ": header is not a JSON object");
  const size_t data_size = file_size - 8 - header_len;

  SafetensorsHeader out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw Error(where + ": __metadata__ is not an object");
      for (const auto& [k, v] : entry.items())
        if (v.is_string()) out.metadata[k] = v.get<std::string>();
      continue;
    }
    out.entries.push_back(parse_entry(name, entry, data_size, where));
  }
  out.data_offset = 8 + header_len;
  return out;
}

}  // namespace bireco::model
