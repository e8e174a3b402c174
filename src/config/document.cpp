#include "bireco/config/document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

#include "bireco/util/error.h"
#include "bireco/util/strings.h"

namespace bireco::config {
namespace fs = std::filesystem;
using nlohmann::json;

std::string Document::where(const std::string& key_path) const {
  const std::string name = file.empty() ? std::string("<config>") : file.string();
  // A key inside an overridden value (--set model.lora={r: 8}) comes from that override.
  for (std::string prefix = key_path;;) {
    const auto origin = origins.find(prefix);
    if (origin != origins.end()) return origin->second;
    const auto cut = prefix.find_last_of(".[");
    if (cut == std::string::npos) break;
    prefix = prefix.substr(0, cut);
  }
  const auto it = lines.find(key_path);
  if (it == lines.end()) return name;
  return name + ":" + std::to_string(it->second);
}

namespace {

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot open config file " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A config is a few levels deep; far deeper nesting is a broken or hostile file. Each level
// keeps its key path (quadratic memory: 300k levels took > 2 GB) and dump() recurses per level.
constexpr size_t kMaxNesting = 64;

std::string too_deep(int line) {
  return "line " + std::to_string(line) + ": nested deeper than " + std::to_string(kMaxNesting) +
         " levels";
}

// ---- JSON: nlohmann's SAX parser over an iterator that counts lines, so each key's line is
// known when the parser reports it.

struct LineCountingIterator {
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* at = nullptr;
  int* line = nullptr;

  reference operator*() const { return *at; }
  LineCountingIterator& operator++() {
    if (*at == '\n') ++*line;
    ++at;
    return *this;
  }
  LineCountingIterator operator++(int) {
    auto copy = *this;
    ++*this;
    return copy;
  }
  bool operator==(const LineCountingIterator& other) const { return at == other.at; }
  bool operator!=(const LineCountingIterator& other) const { return at != other.at; }
};

// Builds the DOM like nlohmann's own SAX-DOM parser and records "a.b[2].c" -> line.
class LocatingSax {
 public:
  LocatingSax(json& root, std::map<std::string, int>& lines, const int& line)
      : root_(root), lines_(lines), line_(line) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(json(v)); }
  bool number_float(json::number_float_t v, const std::string&) { return value(json(v)); }
  bool string(std::string& v) { return value(json(v)); }
  bool binary(json::binary_t&) { return false; }

  bool start_object(std::size_t) { return open(json::object()); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    frames_.back().key = k;
    lines_[child_path()] = line_;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = e.what();
    error_position_ = position;
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    json* node;
    std::string path;
    std::string key;  // objects: the pending key
  };

  std::string child_path() const {
    const Frame& f = frames_.back();
    if (f.node->is_array()) return f.path + "[" + std::to_string(f.node->size()) + "]";
    return f.path.empty() ? f.key : f.path + "." + f.key;
  }

  json* place(json v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = frames_.back();
    if (f.node->is_array()) {
      lines_.emplace(child_path(), line_);
      f.node->push_back(std::move(v));
      return &f.node->back();
    }
    json& slot = (*f.node)[f.key];
    slot = std::move(v);
    return &slot;
  }

  bool value(json v) {
    place(std::move(v));
    return true;
  }
  bool open(json container) {
    if (frames_.size() >= kMaxNesting) {
      error_ = too_deep(line_);
      return false;
    }
    const std::string path = frames_.empty() ? "" : child_path();
    json* node = place(std::move(container));
    frames_.push_back({node, path, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }

  json& root_;
  std::map<std::string, int>& lines_;
  const int& line_;
  std::vector<Frame> frames_;
  std::string error_;
  std::size_t error_position_ = 0;
};

// ---- YAML: yaml-cpp nodes carry marks; scalars are typed by the YAML 1.2 core schema, and a
// quoted scalar is always a string.

// YAML text must be valid UTF-8 as JSON text is (nlohmann's parser rejects it there); an
// ill-formed string would otherwise make nlohmann::json::dump() throw when the config is
// printed or named in an error. nlohmann's own check, so both formats agree.
void require_utf8(const std::string& text, const YAML::Mark& mark) {
  try {
    (void)json(text).dump();
  } catch (const json::type_error&) {
    throw Error("line " + std::to_string(mark.line + 1) + ": invalid UTF-8 in a string");
  }
}

// The core schema's number forms, matched by hand: std::regex's recursive matcher overflows
// the stack on a scalar of some 100k digits (found by fuzz/config_document).
size_t skip_digits(std::string_view& text) {
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
  text.remove_prefix(n);
  return n;
}

void skip_sign(std::string_view& text) {
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.remove_prefix(1);
}

// [-+]?[0-9]+
bool is_core_int(std::string_view text) {
  skip_sign(text);
  return skip_digits(text) > 0 && text.empty();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_core_float(std::string_view text) {
  skip_sign(text);
  const size_t whole = skip_digits(text);
  size_t fraction = 0;
  if (!text.empty() && text[0] == '.') {
    text.remove_prefix(1);
    fraction = skip_digits(text);
  }
  if (whole == 0 && fraction == 0) return false;
  if (!text.empty() && (text[0] == 'e' || text[0] == 'E')) {
    text.remove_prefix(1);
    skip_sign(text);
    if (skip_digits(text) == 0) return false;
  }
  return text.empty();
}

json yaml_scalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  require_utf8(text, node.Mark());
  if (node.Tag() == "!") return text;  // quoted
  if (text == "~" || text == "null" || text == "Null" || text == "NULL" || text.empty()) {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (is_core_int(text)) {
    try {
      return std::stoll(text);
    } catch (const std::out_of_range&) {
      return text;
    }
  }
  if (is_core_float(text)) {
    try {
      return std::stod(text);
    } catch (const std::out_of_range&) {  // 1e999, 1e-999: kept as written, as an integer is
      return text;
    }
  }
  if (text == ".inf" || text == "+.inf") return std::numeric_limits<double>::infinity();
  if (text == "-.inf") return -std::numeric_limits<double>::infinity();
  return text;
}

json yaml_to_json(const YAML::Node& node, const std::string& path,
                  std::map<std::string, int>& lines, size_t depth = 0);

// A YAML 1.1 merge key (yaml.org/type/merge.html), `<<: *base` or `<<: [*a, *b]`: each
// mapping's keys join `out` unless `out` has them already, so the keys written beside `<<`
// win, then the earlier mappings of the list. yaml-cpp resolves the aliases but leaves `<<` an
// ordinary key. A merged key's line is where the anchored mapping wrote it.
void merge_into(json& out, const YAML::Node& value, const std::string& path,
                std::map<std::string, int>& lines, size_t depth) {
  std::vector<YAML::Node> sources;
  if (value.IsMap()) sources.push_back(value);
  if (value.IsSequence()) {
    for (size_t i = 0; i < value.size(); ++i) sources.push_back(value[i]);
  }
  if (sources.empty() ||
      std::any_of(sources.begin(), sources.end(), [](const YAML::Node& n) { return !n.IsMap(); })) {
    throw Error("line " + std::to_string(value.Mark().line + 1) +
                ": a merge key '<<' takes a mapping or a list of mappings (e.g. <<: *defaults)");
  }
  for (const YAML::Node& source : sources) {
    std::map<std::string, int> source_lines;
    const json keys = yaml_to_json(source, path, source_lines, depth);
    for (const auto& [key, item] : keys.items()) {
      if (out.contains(key)) continue;
      out[key] = item;
      const std::string child = path.empty() ? key : path + "." + key;
      for (const auto& [p, line] : source_lines) {
        if (p == child || util::starts_with(p, child + ".") || util::starts_with(p, child + "["))
          lines[p] = line;
      }
    }
  }
}

json yaml_to_json(const YAML::Node& node, const std::string& path,
                  std::map<std::string, int>& lines, size_t depth) {
  if (depth >= kMaxNesting && (node.IsSequence() || node.IsMap())) {
    throw Error(too_deep(node.Mark().line + 1));
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return yaml_scalar(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (size_t i = 0; i < node.size(); ++i) {
        const std::string child = path + "[" + std::to_string(i) + "]";
        lines[child] = node[i].Mark().line + 1;
        out.push_back(yaml_to_json(node[i], child, lines, depth + 1));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      std::vector<YAML::Node> merged;  // the values of `<<` keys, applied after the own keys
      for (const auto& item : node) {
        if (item.first.IsScalar() && item.first.Scalar() == "<<" && item.first.Tag() != "!") {
          merged.push_back(item.second);
          continue;
        }
        if (!item.first.IsScalar()) {
          throw Error("line " + std::to_string(item.first.Mark().line + 1) +
                      ": mapping keys must be plain strings");
        }
        const std::string key = item.first.Scalar();
        require_utf8(key, item.first.Mark());
        const std::string child = path.empty() ? key : path + "." + key;
        if (out.contains(key)) {
          throw Error("line " + std::to_string(item.first.Mark().line + 1) + ": key '" + child +
                      "' appears twice");
        }
        lines[child] = item.first.Mark().line + 1;
        out[key] = yaml_to_json(item.second, child, lines, depth + 1);
      }
      for (const YAML::Node& value : merged) merge_into(out, value, path, lines, depth);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

Document parse_json_text(const std::string& text, const fs::path& name) {
  Document doc;
  doc.file = name;
  int line = 1;
  LocatingSax sax(doc.root, doc.lines, line);
  LineCountingIterator first{text.data(), &line};
  LineCountingIterator last{text.data() + text.size(), &line};
  const bool ok = json::sax_parse(first, last, &sax);
  if (!ok) {
    // nlohmann's message already says "at line L, column C".
    std::string message = sax.error();
    const auto colon = message.find("] ");
    if (colon != std::string::npos) message = message.substr(colon + 2);
    throw Error((name.empty() ? std::string("<config>") : name.string()) +
                ": invalid JSON: " + message);
  }
  return doc;
}

Document parse_yaml_text(const std::string& text, const fs::path& name) {
  Document doc;
  doc.file = name;
  const std::string shown = name.empty() ? std::string("<config>") : name.string();
  try {
    const YAML::Node node = YAML::Load(text);
    doc.root = yaml_to_json(node, "", doc.lines);
    if (doc.root.is_null()) doc.root = json::object();
  } catch (const YAML::Exception& e) {
    throw Error(shown + ":" + std::to_string(e.mark.line + 1) + ":" +
                std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  } catch (const Error& e) {
    throw Error(shown + ": " + e.what());
  }
  return doc;
}

Document load_document(const fs::path& file) {
  if (!fs::exists(file)) throw Error("config file not found: " + file.string());
  const std::string ext = file.extension().string();
  const std::string text = read_file(file);
  Document doc;
  if (ext == ".json") {
    doc = parse_json_text(text, file);
  } else if (ext == ".yaml" || ext == ".yml") {
    doc = parse_yaml_text(text, file);
  } else {
    throw Error("config file " + file.string() +
                ": unknown extension (expected .json, .yaml or .yml)");
  }
  if (!doc.root.is_object()) {
    throw Error(file.string() + ": a config must be a mapping of sections, found " +
                std::string(doc.root.type_name()));
  }
  return doc;
}

json parse_override_value(const std::string& text) {
  try {
    const YAML::Node node = YAML::Load(text);
    std::map<std::string, int> ignored;
    return yaml_to_json(node, "", ignored);
  } catch (const YAML::Exception&) {
    return text;
  }
}

void set_path(Document& doc, const std::string& dotted_path, json value,
              const std::string& origin) {
  const auto parts = util::split(dotted_path, '.');
  json* node = &doc.root;
  std::string path;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty()) throw Error(origin + " " + dotted_path + ": empty key in the path");
    path = path.empty() ? parts[i] : path + "." + parts[i];
    if (node->is_null()) *node = json::object();
    if (!node->is_object()) {
      throw Error(origin + " " + dotted_path + ": '" + path.substr(0, path.rfind('.')) +
                  "' is a " + node->type_name() + ", not a section");
    }
    json& child = (*node)[parts[i]];
    if (i + 1 == parts.size()) {
      child = std::move(value);
    } else {
      node = &child;
    }
  }
  doc.origins[dotted_path] = origin;
}

void apply_override(Document& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("--set '" + assignment + "': expected key.path=value");
  }
  set_path(doc, assignment.substr(0, eq), parse_override_value(assignment.substr(eq + 1)));
}

namespace {

bool is_name_char(char c, bool first) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (!first && c >= '0' && c <= '9');
}

// The '}' closing the `${` at `open`, counting nested `${...}` in a default word.
size_t closing_brace(const std::string& text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      ++i;
    } else if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      ++depth;
      ++i;
    } else if (text[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return std::string::npos;
}

}  // namespace

std::string expand_env(const std::string& text, const std::string& context) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      const auto close = closing_brace(text, i);
      if (close == std::string::npos) {
        throw Error(context + ": unterminated ${...} in '" + text + "'");
      }
      // As the shell: ${NAME}, ${NAME:-word} (word when NAME is unset or empty) and
      // ${NAME-word} (word when NAME is unset); the word is expanded in turn.
      const std::string inside = text.substr(i + 2, close - i - 2);
      size_t n = 0;
      while (n < inside.size() && is_name_char(inside[n], n == 0)) ++n;
      const std::string name = inside.substr(0, n), rest = inside.substr(n);
      const bool colon = util::starts_with(rest, ":-");
      if (name.empty() || !(rest.empty() || colon || rest[0] == '-')) {
        throw Error(context + ": '${" + inside + "}' in '" + text +
                    "' is not ${NAME}, ${NAME:-default} or ${NAME-default}");
      }
      const char* value = std::getenv(name.c_str());
      if (!rest.empty() && (value == nullptr || (colon && *value == '\0'))) {
        out += expand_env(rest.substr(colon ? 2 : 1), context);
      } else if (value == nullptr) {
        throw Error(context + ": environment variable " + name + " is not set (used in '" +
                    text + "')");
      } else {
        out += value;
      }
      i = close;
      continue;
    }
    out += '$';
  }
  return out;
}

}  // namespace bireco::config
