// A JSON value from a user's file, shortened for an error message. nlohmann::json::dump()
// recurses once per nesting level, so dumping a hostile value ([[[[...]]]] 100k deep, found
// with fuzz/safetensors_header) overflows the stack; this prints a bounded excerpt instead.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace bireco::util {

// `value` as compact JSON, containers below `max_depth` levels shown as [...] / {...}, cut to
// `max_chars` (ending in "...") and with ill-formed UTF-8 replaced by U+FFFD.
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 200, int max_depth = 4);

}  // namespace bireco::util
