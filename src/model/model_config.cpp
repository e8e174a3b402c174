// config.json -> ModelConfig, following each family's defaults in transformers'
// configuration_{llama,mistral,qwen2,qwen3}.py.
#include "bireco/model/model_config.h"

#include <fstream>
#include <map>
#include <optional>

#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::model {
namespace {

using nlohmann::json;

// model_type for each `architectures` entry we accept when model_type is absent.
const std::map<std::string, std::string> kArchitectureFamilies = {
    {"LlamaForCausalLM", "llama"},     {"LlamaModel", "llama"},
    {"MistralForCausalLM", "mistral"}, {"MistralModel", "mistral"},
    {"Qwen2ForCausalLM", "qwen2"},     {"Qwen2Model", "qwen2"},
    {"Qwen3ForCausalLM", "qwen3"},     {"Qwen3Model", "qwen3"}};

class Reader {
 public:
  // `prefix` names the enclosing object in messages, e.g. "rope_scaling.".
  Reader(const json& j, std::string source, std::string prefix = "")
      : j_(j), source_(std::move(source)), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  int64_t integer(const char* key) const {
    if (!has(key)) fail(key, "is required");
    if (!j_.at(key).is_number_integer()) fail(key, "must be an integer");
    return j_.at(key).get<int64_t>();
  }
  int64_t integer(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_number()) fail(key, "must be a number");
    return j_.at(key).get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_boolean()) fail(key, "must be true or false");
    return j_.at(key).get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_string()) fail(key, "must be a string");
    return j_.at(key).get<std::string>();
  }
  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(source_ + ": `" + prefix_ + key + "` " + what);
  }

 private:
  const json& j_;
  std::string source_;
  std::string prefix_;
};

// The first element of `key` when it holds a list (architectures, eos_token_id), else the
// value itself; null when absent or an empty list.
json first_of(const json& j, const char* key) {
  if (!j.contains(key)) return nullptr;
  const json& value = j.at(key);
  if (!value.is_array()) return value;
  return value.empty() ? json(nullptr) : value.front();
}

// int64 arithmetic that reports overflow instead of wrapping (undefined behaviour).
class Checked {
 public:
  Checked(int64_t value) : value_(value) {}  // NOLINT: implicit, so sizes mix with Checked
  friend Checked operator+(Checked a, Checked b) { return a.combine(b, add); }
  friend Checked operator*(Checked a, Checked b) { return a.combine(b, mul); }
  std::optional<int64_t> value() const { return ok_ ? std::optional(value_) : std::nullopt; }

 private:
  static bool add(int64_t a, int64_t b, int64_t* out) { return __builtin_add_overflow(a, b, out); }
  static bool mul(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }
  template <typename Op>
  Checked combine(Checked o, Op op) const {
    Checked out(0);
    out.ok_ = ok_ && o.ok_ && !op(value_, o.value_, &out.value_);
    return out;
  }
  int64_t value_;
  bool ok_ = true;
};

// The parameter count of the base model (no LoRA), or nullopt when it overflows int64.
std::optional<int64_t> checked_parameter_count(const ModelConfig& c) {
  const Checked C = c.hidden_size, D = c.head_dim, H = c.num_attention_heads,
                K = c.num_key_value_heads, I = c.intermediate_size;
  Checked layer = C * H * D + 2 * C * K * D + H * D * C + 3 * C * I + 2 * C;
  if (c.qkv_bias) layer = layer + H * D + 2 * K * D;
  if (c.o_bias) layer = layer + C;
  if (c.mlp_bias) layer = layer + 2 * I + C;
  if (c.qk_norm) layer = layer + 2 * D;
  Checked total = Checked(c.num_hidden_layers) * layer + Checked(c.vocab_size) * C + C;
  if (!c.tie_word_embeddings) total = total + Checked(c.vocab_size) * C;
  return total.value();
}

// `key` is the object's name in messages: rope_scaling (transformers 4) or rope_parameters
// (transformers 5, which keeps the same fields there beside rope_theta).
RopeScaling parse_rope_scaling(const json& j, const Reader& outer, const std::string& key) {
  RopeScaling s;
  if (j.is_null()) return s;
  if (!j.is_object()) outer.fail(key, "must be an object or null");
  Reader r(j, outer.source(), key + ".");
  s.type = r.string("rope_type", r.string("type", "default"));
  s.factor = r.number("factor", 1.0);
  if (!(s.factor > 0)) r.fail("factor", "must be positive");
  if (s.type == "default") return s;
  if (s.type == "linear") return s;
  if (s.type == "llama3") {
    s.low_freq_factor = r.number("low_freq_factor", 1.0);
    s.high_freq_factor = r.number("high_freq_factor", 4.0);
    s.original_max_position_embeddings = r.integer("original_max_position_embeddings", 8192);
    if (s.original_max_position_embeddings <= 0)
      r.fail("original_max_position_embeddings", "must be positive");
    if (s.high_freq_factor <= s.low_freq_factor)
      outer.fail("rope_scaling.high_freq_factor", "must exceed low_freq_factor");
    return s;
  }
  outer.fail(key + ".rope_type",
             "is `" + s.type +
                 "`: bireco supports default, linear and llama3 (dynamic, yarn, "
                 "longrope, ... would change the math)");
}

}  // namespace

ModelConfig parse_model_config(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": expected a JSON object");
  const Reader r(j, source);
  ModelConfig c;
  c.raw = j;
  if (const json first = first_of(j, "architectures"); !first.is_null()) {
    if (!first.is_string()) r.fail("architectures", "must be a list of class names");
    c.architecture = first.get<std::string>();
  }
  c.model_type = r.string("model_type", "");
  if (c.model_type.empty()) {
    const auto it = kArchitectureFamilies.find(c.architecture);
    if (it == kArchitectureFamilies.end())
      r.fail("model_type", "is missing and `architectures` does not name a supported model");
    c.model_type = it->second;
  }
  const bool llama = c.model_type == "llama", mistral = c.model_type == "mistral",
             qwen2 = c.model_type == "qwen2", qwen3 = c.model_type == "qwen3";
  if (!(llama || mistral || qwen2 || qwen3))
    r.fail("model_type", "is `" + c.model_type + "`: bireco supports llama, mistral, qwen2 and qwen3");
  if (c.architecture.empty())
    c.architecture = std::map<std::string, std::string>{{"llama", "LlamaForCausalLM"},
                                                        {"mistral", "MistralForCausalLM"},
                                                        {"qwen2", "Qwen2ForCausalLM"},
                                                        {"qwen3", "Qwen3ForCausalLM"}}
                         .at(c.model_type);

  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads"})
    if (r.integer(key, 1) <= 0) r.fail(key, "must be positive");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_key_value_heads", "must divide num_attention_heads");
  if (!r.has("head_dim") && c.hidden_size % c.num_attention_heads != 0)
    r.fail("num_attention_heads", "must divide hidden_size (or set head_dim)");
  c.head_dim = r.integer("head_dim", c.hidden_size / c.num_attention_heads);
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) r.fail("head_dim", "must be positive and even");

  const std::string act = r.string("hidden_act", "silu");
  if (act != "silu") r.fail("hidden_act", "is `" + act + "`: only silu (SwiGLU) is supported");
  if (r.number("attention_dropout", 0.0) != 0.0)
    r.fail("attention_dropout", "must be 0 (attention dropout is not implemented)");
  if (r.integer("pretraining_tp", 1) < 1) r.fail("pretraining_tp", "must be >= 1");

  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.rope_theta = r.number("rope_theta", 10000.0);
  c.max_position_embeddings = r.integer("max_position_embeddings", 4096);
  if (c.max_position_embeddings <= 0) r.fail("max_position_embeddings", "must be positive");
  if (!(c.rope_theta > 0)) r.fail("rope_theta", "must be positive");
  if (!(c.rms_norm_eps >= 0)) r.fail("rms_norm_eps", "must not be negative");
  if (j.contains("rope_scaling"))
    c.rope_scaling = parse_rope_scaling(j["rope_scaling"], r, "rope_scaling");
  // transformers 5 writes the base and the scaling as one `rope_parameters` object and no
  // top-level rope_theta (save_pretrained of any model, SmolLM2's among them); reading only
  // the old keys would silently rotate with the default base 10000.
  if (r.has("rope_parameters")) {
    const json& parameters = j["rope_parameters"];
    c.rope_scaling = parse_rope_scaling(parameters, r, "rope_parameters");
    c.rope_theta =
        Reader(parameters, source, "rope_parameters.").number("rope_theta", c.rope_theta);
    if (!(c.rope_theta > 0)) r.fail("rope_parameters.rope_theta", "must be positive");
  }
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.initializer_range = r.number("initializer_range", 0.02);
  c.bos_token_id = r.integer("bos_token_id", -1);
  if (const json first = first_of(j, "eos_token_id"); !first.is_null()) {
    if (!first.is_number_integer()) r.fail("eos_token_id", "must be an integer or a list of them");
    c.eos_token_id = first.get<int64_t>();
  }

  if (llama) {
    c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
    c.mlp_bias = r.boolean("mlp_bias", false);
  } else if (mistral) {
    // MistralConfig defaults sliding_window to 4096; null disables it.
    c.sliding_window = j.contains("sliding_window") ? r.integer("sliding_window", 0) : 4096;
  } else if (qwen2) {
    c.qkv_bias = true;
    // Qwen2 applies its window only to layers >= max_window_layers; no released checkpoint
    // turns it on, so bireco refuses it rather than guessing.
    if (r.boolean("use_sliding_window", false))
      r.fail("use_sliding_window", "is true: Qwen2's per-layer sliding window is not supported");
  } else if (qwen3) {
    c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
    c.qk_norm = true;
    if (r.boolean("use_sliding_window", false))
      r.fail("use_sliding_window", "is true: Qwen3's per-layer sliding window is not supported");
  }
  if (c.sliding_window < 0) r.fail("sliding_window", "must be positive or null");
  // Sizes from a hostile or mistyped file (hidden_size 2^40, ...) would overflow int64 in every
  // product computed from them; refuse them here, once.
  if (!checked_parameter_count(c))
    r.fail("hidden_size", "and the other sizes describe more than 2^63 parameters");
  return c;
}

ModelConfig read_model_config(const std::filesystem::path& dir) {
  const auto file = dir / "config.json";
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open (is `" + dir.string() + "` a Hugging Face model directory?)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(file.string() + ": invalid JSON: " + util::json_error_text(e));
  }
  return parse_model_config(j, file.string());
}

int64_t count_parameters(const ModelConfig& c) {
  const auto total = checked_parameter_count(c);
  if (!total) throw Error("model config: more than 2^63 parameters");
  return *total;
}

}  // namespace bireco::model
