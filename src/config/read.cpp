// The reading visitor: Document -> StageConfig with every check that names a key path.
#include <algorithm>
#include <cmath>

#include "bireco/config/load.h"
#include "bireco/util/error.h"
#include "bireco/util/strings.h"

namespace bireco::config {
namespace {
using nlohmann::json;

std::string describe(const json& value) {
  std::string shown = value.dump();
  if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
  switch (value.type()) {
    case json::value_t::string: return "a string (" + shown + ")";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer (" + shown + ")";
    case json::value_t::number_float: return "a number (" + shown + ")";
    case json::value_t::boolean: return "a boolean (" + shown + ")";
    case json::value_t::null: return "null";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "a mapping";
    default: return value.type_name();
  }
}

class Reader : public Visitor {
 public:
  explicit Reader(const Document& doc) : doc_(doc), all_paths_(schema_paths()) {}

  void read(StageConfig& config) {
    frames_.push_back({&doc_.root, ""});
    visit(*this, config);
    reject_unknown_keys();
  }

  void field(const char* key, std::string& value, const FieldInfo& info) override {
    const json* v = lookup(key);
    if (v == nullptr) return;
    if (!v->is_string()) type_error(key, "a string", *v);
    value = v->get<std::string>();
    if (info.is_path) value = expand_env(value, where(key));
    check_choice(key, value, info);
  }
  void field(const char* key, int64_t& value, const FieldInfo&) override {
    const json* v = lookup(key);
    if (v == nullptr) return;
    if (!v->is_number_integer()) type_error(key, "an integer", *v);
    value = v->get<int64_t>();
  }
  void field(const char* key, double& value, const FieldInfo&) override {
    const json* v = lookup(key);
    if (v == nullptr) return;
    if (!v->is_number()) type_error(key, "a number", *v);
    value = v->get<double>();
  }
  void field(const char* key, bool& value, const FieldInfo&) override {
    const json* v = lookup(key);
    if (v == nullptr) return;
    if (!v->is_boolean()) type_error(key, "a boolean (true or false)", *v);
    value = v->get<bool>();
  }
  void field(const char* key, std::vector<std::string>& value, const FieldInfo& info) override {
    const json* v = lookup(key);
    if (v == nullptr) return;
    value.clear();
    if (v->is_string()) {  // a single string is a list of one
      value.push_back(info.is_path ? expand_env(v->get<std::string>(), where(key))
                                   : v->get<std::string>());
      return;
    }
    if (!v->is_array()) type_error(key, "a list of strings", *v);
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string item = std::string(key) + "[" + std::to_string(i) + "]";
      if (!(*v)[i].is_string()) type_error(item.c_str(), "a string", (*v)[i]);
      std::string text = (*v)[i].get<std::string>();
      value.push_back(info.is_path ? expand_env(text, where(item.c_str())) : text);
    }
  }
  void field(const char* key, std::vector<double>& value, const FieldInfo&) override {
    const json* v = lookup(key);
    if (v == nullptr) return;
    if (!v->is_array()) type_error(key, "a list of numbers", *v);
    value.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string item = std::string(key) + "[" + std::to_string(i) + "]";
      if (!(*v)[i].is_number()) type_error(item.c_str(), "a number", (*v)[i]);
      value.push_back((*v)[i].get<double>());
    }
  }
  void field(const char* key, std::map<std::string, std::string>& value,
             const FieldInfo&) override {
    const json* v = lookup(key);
    if (v == nullptr) return;
    if (v->is_null()) return;
    if (!v->is_object()) type_error(key, "a mapping of strings", *v);
    value.clear();
    for (const auto& [name, item] : v->items()) {
      const std::string path = std::string(key) + "." + name;
      if (!item.is_string()) type_error(path.c_str(), "a string", item);
      value[name] = item.get<std::string>();
    }
  }

  void section(const char* key, const char*,
               const std::function<void(Visitor&)>& body) override {
    const json* v = lookup(key);
    if (v != nullptr && !v->is_object()) type_error(key, "a mapping (section)", *v);
    enter(key, v, body);
  }
  void optional_section(const char* key, bool& present, const char*,
                        const std::function<void(Visitor&)>& body) override {
    const json* v = lookup(key);
    if (v == nullptr) {
      enter(key, nullptr, body);  // keeps defaults, `present` unchanged
      return;
    }
    if (v->is_null()) {
      present = false;
      enter(key, nullptr, body);
      return;
    }
    if (!v->is_object()) type_error(key, "a mapping or null", *v);
    present = true;
    enter(key, v, body);
  }

 private:
  struct Frame {
    const json* node;  // null when the section is absent from the document
    std::string path;
    std::vector<std::string> known = {};
  };

  std::string path_of(const char* key) const {
    const std::string& base = frames_.back().path;
    return base.empty() ? std::string(key) : base + "." + key;
  }
  std::string where(const char* key) const {
    const std::string path = path_of(key);
    return doc_.where(path) + ": " + path;
  }

  const json* lookup(const char* key) {
    Frame& frame = frames_.back();
    frame.known.emplace_back(key);
    if (frame.node == nullptr) return nullptr;
    auto it = frame.node->find(key);
    return it == frame.node->end() ? nullptr : &*it;
  }

  void enter(const char* key, const json* node, const std::function<void(Visitor&)>& body) {
    frames_.push_back({node, path_of(key)});
    body(*this);
    reject_unknown_keys();
  }

  void reject_unknown_keys() {
    const Frame frame = frames_.back();
    frames_.pop_back();
    if (frame.node == nullptr) return;
    for (const auto& [name, value] : frame.node->items()) {
      if (std::find(frame.known.begin(), frame.known.end(), name) != frame.known.end()) continue;
      const std::string path = frame.path.empty() ? name : frame.path + "." + name;
      std::string message = doc_.where(path) + ": unknown key '" + path + "'";
      // The right key in the wrong section (`train.lr` for `optim.lr`) is the surest guess;
      // else a misspelt or abbreviated key of this section.
      std::string suggestion;
      for (const auto& candidate : all_paths_) {
        if (util::ends_with(candidate, "." + name)) {
          suggestion = candidate;
          break;
        }
      }
      if (suggestion.empty()) {
        suggestion = util::closest_match(name, frame.known);
        if (!suggestion.empty() && !frame.path.empty()) suggestion = frame.path + "." + suggestion;
      }
      if (!suggestion.empty()) {
        message += "; did you mean '" + suggestion + "'?";
      } else {
        message += " (valid keys here: " + util::join(frame.known, ", ") + ")";
      }
      throw Error(message);
    }
  }

  [[noreturn]] void type_error(const char* key, const std::string& expected, const json& found) {
    std::string message = where(key) + ": expected " + expected + ", found " + describe(found);
    // `--set text.template={text}` or `template: {text}`: YAML flow syntax made a mapping of
    // what was meant as text.
    if (expected.find("string") != std::string::npos && (found.is_object() || found.is_array())) {
      const std::string path = path_of(key);
      message +=
          std::string(
              "; YAML reads {...} as a mapping and [...] as a list: to give a string, quote it") +
          (util::starts_with(doc_.where(path), "--set") ? " (--set '" + path + "=\"{text}\"')"
                                                        : " ('{text}')");
    }
    throw Error(message);
  }

  void check_choice(const char* key, const std::string& value, const FieldInfo& info) {
    if (info.choices.empty()) return;
    if (std::find(info.choices.begin(), info.choices.end(), value) != info.choices.end()) return;
    std::string message =
        where(key) + ": '" + value + "' is not one of " + util::join(info.choices, ", ");
    const std::string suggestion = util::closest_match(value, info.choices);
    if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
    throw Error(message);
  }

  const Document& doc_;
  std::vector<std::string> all_paths_;
  std::vector<Frame> frames_;
};

// Range checks that need more than a type: each names its key.
void check_values(const StageConfig& c, const Document& doc) {
  auto fail = [&](const std::string& path, const std::string& what) {
    throw Error(doc.where(path) + ": " + path + ": " + what);
  };
  auto positive = [&](const std::string& path, double value) {
    if (!(value > 0)) fail(path, "must be > 0, found " + nlohmann::json(value).dump());
  };
  auto non_negative = [&](const std::string& path, double value) {
    if (!(value >= 0)) fail(path, "must be >= 0, found " + nlohmann::json(value).dump());
  };
  if (c.model.path.empty()) fail("model.path", "is required (a Hugging Face model directory)");
  positive("text.max_length", c.text.max_length);
  non_negative("text.query_max_length", c.text.query_max_length);
  non_negative("text.document_max_length", c.text.document_max_length);
  if (c.text.template_.find("{text}") == std::string::npos) {
    fail("text.template", "must contain {text}");
  }
  if (c.text.instruction_format.find("{text}") == std::string::npos) {
    fail("text.instruction_format", "must contain {text}");
  }
  if (c.model.use_lora) {
    positive("model.lora.r", c.model.lora.r);
    positive("model.lora.alpha", c.model.lora.alpha);
    if (c.model.lora.dropout < 0 || c.model.lora.dropout >= 1) {
      fail("model.lora.dropout", "must be in [0, 1)");
    }
    static const std::vector<std::string> kTargets = {"q_proj",    "k_proj",  "v_proj", "o_proj",
                                                      "gate_proj", "up_proj", "down_proj"};
    for (size_t i = 0; i < c.model.lora.targets.size(); ++i) {
      const auto& t = c.model.lora.targets[i];
      if (std::find(kTargets.begin(), kTargets.end(), t) == kTargets.end()) {
        std::string message = "'" + t + "' is not one of " + util::join(kTargets, ", ");
        const auto s = util::closest_match(t, kTargets);
        if (!s.empty()) message += "; did you mean '" + s + "'?";
        fail("model.lora.targets[" + std::to_string(i) + "]", message);
      }
    }
  }
  non_negative("objective.reconstruction.d2q_weight", c.objective.reconstruction.d2q_weight);
  non_negative("objective.reconstruction.q2d_weight", c.objective.reconstruction.q2d_weight);
  positive("objective.contrastive.scale", c.objective.contrastive.scale);
  non_negative("objective.contrastive.hard_negatives", c.objective.contrastive.hard_negatives);
  non_negative("objective.contrastive.gradcache_chunk", c.objective.contrastive.gradcache_chunk);
  positive("objective.loss_chunk_tokens", c.objective.loss_chunk_tokens);
  positive("optim.lr", c.optim.lr);
  non_negative("optim.weight_decay", c.optim.weight_decay);
  if (c.optim.betas.size() != 2) fail("optim.betas", "must hold exactly two numbers");
  for (double b : c.optim.betas) {
    if (b < 0 || b >= 1) fail("optim.betas", "each beta must be in [0, 1)");
  }
  positive("optim.eps", c.optim.eps);
  non_negative("optim.clip_grad_norm", c.optim.clip_grad_norm);
  non_negative("schedule.warmup_steps", c.schedule.warmup_steps);
  if (c.schedule.min_lr_ratio < 0 || c.schedule.min_lr_ratio > 1) {
    fail("schedule.min_lr_ratio", "must be in [0, 1]");
  }
  positive("train.batch_size", c.train.batch_size);
  positive("train.grad_accum", c.train.grad_accum);
  non_negative("train.max_steps", c.train.max_steps);
  positive("train.epochs", c.train.epochs);
  positive("train.log_every", c.train.log_every);
  non_negative("train.max_skipped_steps", c.train.max_skipped_steps);
  non_negative("checkpoint.every", c.checkpoint.every);
  non_negative("checkpoint.keep", c.checkpoint.keep);
  if (c.checkpoint.dir.empty()) fail("checkpoint.dir", "is required");
  positive("dist.timeout_s", c.dist.timeout_s);
  positive("dist.bucket_mb", c.dist.bucket_mb);
  non_negative("eval.every", c.eval.every);
  non_negative("eval.max_queries", c.eval.max_queries);
  non_negative("eval.max_corpus", c.eval.max_corpus);
  positive("eval.batch_tokens", c.eval.batch_tokens);
  positive("eval.timeout_s", c.eval.timeout_s);
  if (!c.eval.metric_for_best.empty() && !c.eval.enabled())
    fail("eval.metric_for_best", "needs a task in eval.retrieval, eval.reranking or eval.sts");
}

}  // namespace

StageConfig read_stage(const Document& doc) {
  StageConfig config;
  Reader(doc).read(config);
  check_values(config, doc);
  return config;
}

StageConfig load_stage(const std::filesystem::path& file,
                       const std::vector<std::string>& overrides) {
  Document doc = load_document(file);
  if (doc.root.contains("pipeline")) {
    throw Error(file.string() + " is a pipeline file; load it with load_pipeline");
  }
  for (const auto& o : overrides) apply_override(doc, o);
  return read_stage(doc);
}

}  // namespace bireco::config
