// One pairs record from a jsonl or tsv line (see pair_format.h).
#include "bireco/data/pair_format.h"

#include <nlohmann/json.hpp>

#include "bireco/util/json_excerpt.h"
#include "bireco/util/strings.h"

namespace bireco::data {
namespace {

using nlohmann::json;

bool is_empty_text(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::string empty_message(const std::string& field) { return "field '" + field + "' is empty"; }

// The JSON type's name as the user wrote it.
std::string type_name(const json& value) {
  return value.is_number() ? "number" : value.type_name();
}

// A required, non-empty string field.
std::optional<std::string> take_text(const json& object, const std::string& field,
                                     std::string* out) {
  const auto it = object.find(field);
  if (it == object.end() || it->is_null()) return "field '" + field + "' is missing";
  if (!it->is_string()) {
    return "field '" + field + "' must be a string, not " + type_name(*it);
  }
  const auto& text = it->get_ref<const std::string&>();
  if (is_empty_text(text)) return empty_message(field);
  if (out != nullptr) *out = text;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> parse_jsonl_pair(std::string_view line, const PairFields& fields,
                                            PairRecord* out) {
  json object;
  try {
    object = json::parse(line.begin(), line.end());
  } catch (const json::parse_error& e) {
    return "malformed JSON (syntax error at byte " + std::to_string(e.byte) + ")";
  } catch (const json::exception& e) {
    return "malformed JSON (" + util::json_error_text(e) + ")";
  }
  if (!object.is_object()) return "expected a JSON object, not " + type_name(object);
  if (auto why = take_text(object, fields.query, out ? &out->query : nullptr)) return why;
  if (auto why = take_text(object, fields.positive, out ? &out->positive : nullptr)) return why;
  if (out != nullptr) out->negatives.clear();
  const auto it = object.find(fields.negative);
  if (it == object.end() || it->is_null()) return std::nullopt;
  const std::string bad_type = "field '" + fields.negative +
                               "' must be a string or a list of strings, not ";
  if (it->is_string()) {
    if (is_empty_text(it->get_ref<const std::string&>())) return empty_message(fields.negative);
    if (out != nullptr) out->negatives.push_back(it->get<std::string>());
    return std::nullopt;
  }
  if (!it->is_array()) return bad_type + type_name(*it);
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    const std::string name = fields.negative + "[" + std::to_string(i) + "]";
    if (!item.is_string()) return bad_type + "a list holding " + type_name(item) + " at " + name;
    if (is_empty_text(item.get_ref<const std::string&>())) return empty_message(name);
    if (out != nullptr) out->negatives.push_back(item.get<std::string>());
  }
  return std::nullopt;
}

TsvColumns tsv_columns_from_header(std::string_view first_line, const PairFields& fields) {
  TsvColumns columns;
  columns.negative_name = fields.negative;
  const std::vector<std::string> names = util::split(first_line, '\t');
  auto find = [&](const std::string& name) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  if (find(fields.query) >= 0 && find(fields.positive) >= 0) {
    columns.has_header = true;
    columns.query = find(fields.query);
    columns.positive = find(fields.positive);
    columns.negative = find(fields.negative);
  }
  return columns;
}

std::optional<std::string> parse_tsv_pair(std::string_view line, const TsvColumns& columns,
                                          const PairFields& fields, PairRecord* out) {
  const std::vector<std::string> cells = util::split(line, '\t');
  auto cell = [&](int column, const std::string& field,
                  std::string* target) -> std::optional<std::string> {
    if (column >= static_cast<int>(cells.size())) {
      return "field '" + field + "' is missing (column " + std::to_string(column + 1) + ")";
    }
    if (is_empty_text(cells[static_cast<size_t>(column)])) return empty_message(field);
    if (target != nullptr) *target = cells[static_cast<size_t>(column)];
    return std::nullopt;
  };
  if (auto why = cell(columns.query, fields.query, out ? &out->query : nullptr)) return why;
  if (auto why = cell(columns.positive, fields.positive, out ? &out->positive : nullptr)) {
    return why;
  }
  if (out != nullptr) out->negatives.clear();
  std::vector<int> negative_columns;
  if (columns.has_header) {
    if (columns.negative >= 0) negative_columns.push_back(columns.negative);
  } else {
    for (int c = 2; c < static_cast<int>(cells.size()); ++c) negative_columns.push_back(c);
  }
  for (int c : negative_columns) {
    std::string text;
    if (auto why = cell(c, fields.negative, &text)) return why;
    if (out != nullptr) out->negatives.push_back(std::move(text));
  }
  return std::nullopt;
}

}  // namespace bireco::data
