// LoRA adapters and PEFT's adapter format (peft/tuners/lora; peft/utils/save_and_load.py).
#include "bireco/model/lora.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bireco/model/safetensors.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::model {
namespace fs = std::filesystem;
namespace {

const std::vector<std::string> kTargets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                           "gate_proj", "up_proj", "down_proj"};

std::string canonical_target(const std::string& t) {
  for (const auto& full : kTargets)
    if (t == full || t + "_proj" == full) return full;
  throw Error("model.lora.targets: unknown target `" + t + "` (q_proj, k_proj, v_proj, o_proj, gate_proj, "
              "up_proj, down_proj)");
}

// Every targeted projection with its module path ("layers.0.self_attn.q_proj").
std::vector<std::pair<std::string, LinearImpl*>> targeted(Transformer& model, const std::vector<std::string>& targets) {
  std::vector<std::string> wanted;
  for (const auto& t : targets) wanted.push_back(canonical_target(t));
  std::vector<std::pair<std::string, LinearImpl*>> out;
  for (const auto& item : model->named_modules()) {
    auto* linear = dynamic_cast<LinearImpl*>(item.value().get());
    if (linear == nullptr || item.key() == "lm_head" || item.key().find(".lora_") != std::string::npos) continue;
    const std::string& path = item.key();
    const std::string leaf = path.substr(path.rfind('.') + 1);
    if (std::find(wanted.begin(), wanted.end(), leaf) != wanted.end()) out.emplace_back(path, linear);
  }
  return out;
}

}  // namespace

void apply_lora(Transformer& model, const config::LoraConfig& lora, int64_t seed) {
  if (lora.r <= 0) throw Error("model.lora.r: must be positive");
  if (lora.dropout < 0 || lora.dropout >= 1) throw Error("model.lora.dropout: must be in [0, 1)");
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  torch::manual_seed(static_cast<uint64_t>(seed));
  for (auto& [path, linear] : targeted(model, lora.targets)) {
    if (linear->has_lora()) throw Error("model.lora: `" + path + "` already has an adapter");
    linear->add_lora(lora.r, lora.alpha, lora.dropout);
    linear->lora_A.set_requires_grad(true);
    linear->lora_B.set_requires_grad(true);
  }
}

void merge_lora(Transformer& model) {
  for (const auto& item : model->named_modules())
    if (auto* linear = dynamic_cast<LinearImpl*>(item.value().get())) linear->merge_lora();
}

std::string peft_name(const std::string& ours, const std::string& task_type) {
  const std::string inner = task_type == "CAUSAL_LM" ? "model." : "";
  return "base_model.model." + inner + ours;
}

void save_adapter(Transformer& model, const config::LoraConfig& lora, const fs::path& dir,
                  const AdapterOptions& options) {
  if (options.task_type != "CAUSAL_LM" && options.task_type != "FEATURE_EXTRACTION")
    throw Error("adapter task_type `" + options.task_type + "`: expected CAUSAL_LM or FEATURE_EXTRACTION");
  NamedTensors tensors;
  std::vector<std::string> modules;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    const torch::Tensor& p = item.value();
    if (name.find(".lora_") == std::string::npos) continue;
    tensors.emplace_back(peft_name(name, options.task_type), p);
    // "layers.0.self_attn.q_proj.lora_A.weight" -> "q_proj"
    std::string path = name.substr(0, name.rfind(".lora_"));
    const std::string target = path.substr(path.rfind('.') + 1);
    if (std::find(modules.begin(), modules.end(), target) == modules.end()) modules.push_back(target);
  }
  if (tensors.empty()) throw Error("save_adapter(" + dir.string() + "): the model has no LoRA adapters");
  nlohmann::json config = {{"peft_type", "LORA"},
                           {"task_type", options.task_type},
                           {"base_model_name_or_path", options.base_model_name_or_path},
                           {"r", lora.r},
                           {"lora_alpha", lora.alpha},
                           {"lora_dropout", lora.dropout},
                           {"target_modules", modules},
                           {"bias", "none"},
                           {"fan_in_fan_out", false},
                           {"inference_mode", true},
                           {"init_lora_weights", true},
                           {"modules_to_save", nullptr},
                           {"use_rslora", false},
                           {"use_dora", false},
                           {"revision", nullptr}};
  const fs::path target = fs::absolute(dir);
  const fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    util::write_file_durably(tmp / "adapter_config.json", config.dump(2) + "\n");
    write_safetensors(tmp / "adapter_model.safetensors", tensors);
    util::install_directory(tmp, target);
  } catch (...) {
    util::remove_quietly(tmp);
    throw;
  }
}

config::LoraConfig load_adapter(Transformer& model, const fs::path& dir) {
  const fs::path cfg_file = dir / "adapter_config.json";
  std::ifstream in(cfg_file);
  if (!in) throw Error(cfg_file.string() + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(cfg_file.string() + ": invalid JSON: " + util::json_error_text(e));
  }
  // PEFT writes these keys; a hand-edited or foreign file gets an Error naming the key, not an
  // nlohmann type_error.
  const auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(cfg_file.string() + ": `" + key + "` " + what);
  };
  const auto field = [&](const char* key, bool (nlohmann::json::*is_type)() const,
                         const char* type) -> const nlohmann::json* {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return nullptr;
    if (!((*it).*is_type)()) fail(key, std::string("must be ") + type);
    return &*it;
  };
  if (!j.is_object()) throw Error(cfg_file.string() + ": expected a JSON object");
  const auto* peft_type = field("peft_type", &nlohmann::json::is_string, "a string");
  if (peft_type == nullptr || *peft_type != "LORA") fail("peft_type", "is not LORA");
  for (const char* key : {"use_dora", "use_rslora"}) {
    const auto* flag = field(key, &nlohmann::json::is_boolean, "true or false");
    if (flag != nullptr && flag->get<bool>())
      throw Error(cfg_file.string() + ": DoRA / rsLoRA adapters are not supported");
  }
  config::LoraConfig lora;
  const auto* r = field("r", &nlohmann::json::is_number_integer, "an integer");
  if (r == nullptr || r->get<int64_t>() <= 0) fail("r", "must be a positive integer");
  lora.r = r->get<int64_t>();
  const auto* alpha = field("lora_alpha", &nlohmann::json::is_number, "a number");
  if (alpha == nullptr) fail("lora_alpha", "is required");
  lora.alpha = alpha->get<double>();
  const auto* dropout = field("lora_dropout", &nlohmann::json::is_number, "a number");
  lora.dropout = dropout != nullptr ? dropout->get<double>() : 0.0;
  if (!(lora.dropout >= 0 && lora.dropout < 1)) fail("lora_dropout", "must be in [0, 1)");
  const auto* targets = field("target_modules", &nlohmann::json::is_array, "a list of module names");
  if (targets == nullptr) fail("target_modules", "is required");
  for (const auto& t : *targets) {
    if (!t.is_string()) fail("target_modules", "must be a list of module names");
    lora.targets.push_back(t.get<std::string>());
  }
  const auto* task_type = field("task_type", &nlohmann::json::is_string, "a string");
  const std::string task = task_type != nullptr ? task_type->get<std::string>() : "FEATURE_EXTRACTION";
  if (!fs::exists(dir / "adapter_model.safetensors") && fs::exists(dir / "adapter_model.bin"))
    throw Error(
        (dir / "adapter_model.bin").string() +
        ": pickle weights are refused (loading them can run arbitrary code); save the adapter with "
        "safe_serialization=True (peft's default) to get adapter_model.safetensors");
  apply_lora(model, lora, 0);

  const SafetensorsFile file(dir / "adapter_model.safetensors");
  std::map<std::string, bool> used;
  for (const auto& n : file.names()) used[n] = false;
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name.find(".lora_") == std::string::npos) continue;
    // Accept either PEFT layout (CAUSAL_LM wraps a ...ForCausalLM, others a bare base model).
    std::string key = peft_name(name, task);
    if (!file.contains(key)) key = peft_name(name, task == "CAUSAL_LM" ? "FEATURE_EXTRACTION" : "CAUSAL_LM");
    if (!file.contains(key))
      throw Error(file.path().string() + ": adapter tensor `" + peft_name(name, task) + "` is missing");
    if (c10::IntArrayRef(file.info(key).shape) != p.sizes())
      throw Error(file.path().string() + ": adapter tensor `" + key + "` has the wrong shape");
    p.copy_(file.tensor(key));
    used[key] = true;
  }
  for (const auto& [name, u] : used)
    if (!u) throw Error(file.path().string() + ": unexpected adapter tensor `" + name + "`");
  return lora;
}

std::pair<int64_t, int64_t> parameter_counts(torch::nn::Module& model) {
  int64_t total = 0, trainable = 0;
  for (const auto& p : model.parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  return {total, trainable};
}

}  // namespace bireco::model
