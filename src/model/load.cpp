// model::load and the seeded random initialisation.
#include "bireco/model/load.h"

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "bireco/model/hf_io.h"
#include "bireco/model/lora.h"
#include "bireco/util/compat.h"
#include "bireco/util/error.h"

namespace bireco::model {

std::string stored_dtype(const std::filesystem::path& dir) {
  std::ifstream in(dir / "config.json");
  const auto config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return "float32";  // read_model_config reports a bad file
  for (const char* key : {"dtype", "torch_dtype"}) {
    const auto found = config.find(key);
    if (found == config.end() || !found->is_string()) continue;
    const std::string name = found->get<std::string>();
    if (name == "bfloat16" || name == "float16") return name;
  }
  return "float32";
}

std::string dtype_config_name(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kFloat16 ? "float16" : "float32";
}

torch::ScalarType parse_dtype(const std::string& name, const std::string& key) {
  // auto: the trainer's choice from train.precision (train/precision.h); float32 elsewhere.
  if (name == "auto" || name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16") return torch::kFloat16;
  throw Error(key + ": unknown dtype `" + name + "` (auto, float32, bfloat16, float16)");
}

torch::Device parse_device(const std::string& name) {
  if (name == "auto") return compat::cuda_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  try {
    torch::Device d(name);
    if (d.is_cuda() && !compat::cuda_available())
      throw Error("model.device: `" + name + "` but this build of bireco has no CUDA device");
    return d;
  } catch (const c10::Error&) {
    throw Error("model.device: unknown device `" + name + "` (auto, cpu, cuda, cuda:N)");
  }
}

void init_random(Transformer& model, int64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  const double std = model->config.initializer_range;
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name.find("lora_") != std::string::npos) continue;
    const bool is_norm = name.find("norm.weight") != std::string::npos;
    if (is_norm)
      p.fill_(1.0);
    else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0)
      p.zero_();
    else
      p.normal_(0.0, std);
  }
}

Transformer load(const config::ModelConfig& o, int64_t seed) {
  Transformer model(read_model_config(o.path));
  if (o.init == "pretrained")
    load_hf_weights(model, o.path);
  else if (o.init == "random")
    init_random(model, seed);
  else
    throw Error("model.init: unknown value `" + o.init + "` (pretrained, random)");
  model->to(parse_device(o.device), parse_dtype(o.dtype));
  if (o.attention != "causal" && o.attention != "bidirectional")
    throw Error("model.attention: unknown value `" + o.attention + "` (causal, bidirectional)");
  model->bidirectional = o.attention == "bidirectional";
  model->gradient_checkpointing = o.gradient_checkpointing;
  model->padding_free = o.padding_free;
  if (o.use_lora) apply_lora(model, o.lora, seed);
  return model;
}

bool cpuinfo_has_native_bf16(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    for (std::string w; words >> w;)
      if (w == "amx_bf16" || w == "avx512_bf16") return true;
  }
  return false;
}

bool native_bf16(const torch::Device& device) {
  if (device.is_cuda()) return true;
  static const bool cpu = [] {
    std::ifstream in("/proc/cpuinfo");
    std::stringstream text;
    text << in.rdbuf();
    return cpuinfo_has_native_bf16(text.str());
  }();
  return cpu;
}

}  // namespace bireco::model
