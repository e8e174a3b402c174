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

// Why nlohmann::json::parse refused a text, without the "[json.exception.<kind>.<id>] " tag and
// cut to `max_chars`. Besides parse_error, parse throws out_of_range for a number too large
// for a double ("number overflow parsing '7e777...'", found with fuzz/tokenizer_json), so
// callers catch nlohmann::json::exception, the common base.
std::string json_error_text(const nlohmann::json::exception& error, size_t max_chars = 200);

}  // namespace bireco::util
