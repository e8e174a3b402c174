// Reading tokenizer.json objects with errors that name the file and the JSON path.
#include "bireco/text/hf_pipeline.h"

#include <utf8proc.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "bireco/text/regex.h"
#include "bireco/text/unicode.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::text {

using nlohmann::json;

// --- JsonContext -----------------------------------------------------------------------------

void JsonContext::fail(const std::string& path, const std::string& message) const {
  throw Error(file_ + ": " + (path.empty() ? "" : path + ": ") + message);
}

const json& JsonContext::at(const json& obj, const std::string& path, const char* key) const {
  if (!obj.is_object()) fail(path, "expected an object");
  const auto it = obj.find(key);
  if (it == obj.end()) fail(json_path(path, key), "missing");
  return *it;
}

const json* JsonContext::find(const json& obj, const char* key) const {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string JsonContext::string_at(const json& obj, const std::string& path,
                                   const char* key) const {
  const json& value = at(obj, path, key);
  if (!value.is_string()) fail(json_path(path, key), "expected a string, got " + util::json_excerpt(value));
  return value.get<std::string>();
}

std::string JsonContext::string_or(const json& obj, const std::string& path, const char* key,
                                   const std::string& fallback) const {
  const json* value = find(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_string()) fail(json_path(path, key), "expected a string, got " + util::json_excerpt(*value));
  return value->get<std::string>();
}

bool JsonContext::bool_or(const json& obj, const std::string& path, const char* key,
                          bool fallback) const {
  const json* value = find(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean())
    fail(json_path(path, key), "expected true or false, got " + util::json_excerpt(*value));
  return value->get<bool>();
}

int64_t JsonContext::int_or(const json& obj, const std::string& path, const char* key,
                            int64_t fallback) const {
  const json* value = find(obj, key);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_number_integer())
    fail(json_path(path, key), "expected an integer, got " + util::json_excerpt(*value));
  return value->get<int64_t>();
}

std::string JsonContext::type_of(const json& obj, const std::string& path) const {
  if (!obj.is_object()) fail(path, "expected an object with a \"type\"");
  return string_at(obj, path, "type");
}

void JsonContext::unsupported(const std::string& path, const std::string& what) const {
  fail(path, "unsupported '" + what + "'");
}

bool is_unicode_whitespace(int32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace bireco::text
