// Bounded rendering of a JSON value for error messages (see json_excerpt.h).
#include "bireco/util/json_excerpt.h"

namespace bireco::util {
namespace {

using nlohmann::json;

std::string scalar_text(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Recursion is bounded by `depth`; stops adding once `out` is past `max_chars`.
void append(const json& value, int depth, size_t max_chars, std::string& out) {
  if (!value.is_structured()) {
    out += scalar_text(value);
    return;
  }
  const bool array = value.is_array();
  if (depth <= 0 && !value.empty()) {
    out += array ? "[...]" : "{...}";
    return;
  }
  out += array ? '[' : '{';
  bool first = true;
  for (auto it = value.begin(); it != value.end() && out.size() <= max_chars; ++it) {
    if (!first) out += ',';
    first = false;
    if (!array) out += scalar_text(json(it.key())) + ":";
    append(*it, depth - 1, max_chars, out);
  }
  out += array ? ']' : '}';
}

}  // namespace

std::string json_excerpt(const nlohmann::json& value, size_t max_chars, int max_depth) {
  std::string out;
  append(value, max_depth, max_chars, out);
  if (out.size() > max_chars) out = out.substr(0, max_chars > 3 ? max_chars - 3 : 0) + "...";
  return out;
}

std::string json_error_text(const nlohmann::json::exception& error, size_t max_chars) {
  std::string text = error.what();
  if (text.rfind("[json.exception.", 0) == 0) {
    const auto end = text.find("] ");
    if (end != std::string::npos) text.erase(0, end + 2);
  }
  if (text.size() > max_chars) text = text.substr(0, max_chars > 3 ? max_chars - 3 : 0) + "...";
  return text;
}

}  // namespace bireco::util
