// HF name table, safetensors checkpoint loading and save_pretrained.
#include "bireco/model/hf_io.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "bireco/model/load.h"
#include "bireco/model/safetensors.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/manifest.h"

namespace bireco::model {
namespace fs = std::filesystem;

const std::vector<std::string> kTokenizerFiles = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "vocab.json",     "merges.txt",            "generation_config.json"};

std::vector<std::pair<std::string, std::string>> hf_weight_table(const ModelConfig& c) {
  std::vector<std::string> per_layer = {"input_layernorm.weight", "self_attn.q_proj.weight",
                                        "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                        "self_attn.o_proj.weight"};
  if (c.qkv_bias)
    for (const char* s : {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"})
      per_layer.push_back(s);
  if (c.o_bias) per_layer.push_back("self_attn.o_proj.bias");
  if (c.qk_norm)
    for (const char* s : {"self_attn.q_norm.weight", "self_attn.k_norm.weight"}) per_layer.push_back(s);
  per_layer.push_back("post_attention_layernorm.weight");
  for (const char* s : {"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"}) per_layer.push_back(s);
  if (c.mlp_bias)
    for (const char* s : {"mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias"}) per_layer.push_back(s);

  std::vector<std::pair<std::string, std::string>> table = {{"model.embed_tokens.weight", "embed_tokens.weight"}};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const auto& s : per_layer) {
      const std::string ours = "layers." + std::to_string(l) + "." + s;
      table.emplace_back("model." + ours, ours);
    }
  table.emplace_back("model.norm.weight", "norm.weight");
  if (!c.tie_word_embeddings) table.emplace_back("lm_head.weight", "lm_head.weight");
  return table;
}

namespace {

// The files holding a checkpoint's tensors, and which file holds each name.
struct Checkpoint {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const SafetensorsFile*> where;
};

// Pickle-based weight files (torch.save): loading one runs arbitrary code, so bireco refuses
// them and says how to convert.
bool is_pickle_weight_file(const fs::path& file) {
  const std::string ext = file.extension().string();
  return ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".pkl" || ext == ".pickle" ||
         ext == ".ckpt";
}

// The shard files model.safetensors.index.json names; a name that leaves `dir` (absolute, or
// with a `..` component) is refused: the index is input, not a path into the filesystem.
std::vector<std::string> index_shards(const fs::path& index) {
  nlohmann::json j;
  try {
    std::ifstream in(index);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(index.string() + ": invalid JSON: " + util::json_error_text(e));
  }
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error(index.string() + ": `weight_map` missing");
  std::set<std::string> names;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string())
      throw Error(index.string() + ": /weight_map/" + name + " is not a file name");
    const fs::path shard(file.get<std::string>());
    if (shard.empty() || shard.is_absolute() ||
        std::find(shard.begin(), shard.end(), "..") != shard.end())
      throw Error(index.string() + ": /weight_map/" + name + " = '" + shard.string() +
                  "' points outside the model folder (refused)");
    if (shard.extension() != ".safetensors")
      throw Error(index.string() + ": /weight_map/" + name + " = '" + shard.string() +
                  "' is not a .safetensors file (bireco reads no pickle)");
    names.insert(shard.generic_string());
  }
  return {names.begin(), names.end()};
}

Checkpoint open_checkpoint(const fs::path& dir) {
  Checkpoint ck;
  const fs::path index = dir / "model.safetensors.index.json", single = dir / "model.safetensors";
  std::vector<std::string> shards;  // relative to dir
  if (fs::exists(single)) {
    shards.push_back("model.safetensors");
  } else if (fs::exists(index)) {
    shards = index_shards(index);
    for (const auto& s : shards)
      if (!fs::exists(dir / s)) throw Error(index.string() + ": shard `" + s + "` is missing");
  } else {
    std::string pickles;
    if (fs::is_directory(dir))
      for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_regular_file() && is_pickle_weight_file(entry.path()))
          pickles += (pickles.empty() ? "" : ", ") + entry.path().filename().string();
    if (!pickles.empty())
      throw Error(
          dir.string() + ": holds only pickle weights (" + pickles +
          "); bireco refuses pickle (loading it can run arbitrary code). Convert once with: "
          "python -c \"from transformers import AutoModel; d='" +
          dir.string() +
          "'; AutoModel.from_pretrained(d).save_pretrained(d, safe_serialization=True)\"");
    throw Error(dir.string() + ": no model.safetensors or model.safetensors.index.json "
                "(bireco reads safetensors checkpoints only)");
  }
  // A bireco checkpoint carries manifest.json: its weight files are checked against it (plain
  // Hugging Face folders have none and load as they are).
  if (util::has_manifest(dir)) {
    std::vector<std::string> listed = shards;
    if (fs::exists(index) && !fs::exists(single)) listed.push_back(index.filename().string());
    util::verify_manifest(dir, util::ManifestCheck::kChecksums, listed);
  }
  for (const auto& rel : shards) {
    const fs::path s = dir / rel;
    ck.files.push_back(std::make_unique<SafetensorsFile>(s));
    for (const auto& name : ck.files.back()->names()) {
      if (ck.where.count(name))
        throw Error(s.string() + ": tensor `" + name + "` also appears in " + ck.where[name]->path().string());
      ck.where[name] = ck.files.back().get();
    }
  }
  return ck;
}

std::string shape_str(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// model.safetensors, or shards of consecutive tensors until the next would pass the limit (as
// transformers splits) plus model.safetensors.index.json.
void write_weight_files(const fs::path& dir, const NamedTensors& tensors, int64_t total,
                        int64_t max_shard_bytes) {
  std::vector<NamedTensors> shards(1);
  int64_t shard_bytes = 0;
  for (const auto& t : tensors) {
    const int64_t bytes = t.second.numel() * t.second.element_size();
    if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += bytes;
  }
  if (shards.size() == 1) {
    write_safetensors(dir / "model.safetensors", shards[0]);
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}},
                          {"weight_map", nlohmann::json::object()}};
  char name[64];
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_safetensors(dir / name, shards[i]);
    for (const auto& t : shards[i]) index["weight_map"][t.first] = name;
  }
  util::write_file_durably(dir / "model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace

void load_hf_weights(Transformer& model, const fs::path& dir) {
  const Checkpoint ck = open_checkpoint(dir);
  auto table = hf_weight_table(model->config);
  // AutoModel (a bare LlamaModel, ...) saves without the `model.` prefix.
  const bool bare = !ck.where.count("model.embed_tokens.weight") && ck.where.count("embed_tokens.weight");
  if (bare)
    for (auto& [hf, ours] : table)
      if (hf.rfind("model.", 0) == 0) hf = hf.substr(6);
  auto params = model->named_parameters();
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (const auto& [hf, ours] : table) {
    const auto it = ck.where.find(hf);
    if (it == ck.where.end())
      throw Error(dir.string() + ": tensor `" + hf + "` is missing from the checkpoint (" +
                  model->config.model_type + " needs it)");
    const SafetensorsFile& file = *it->second;
    torch::Tensor& param = params[ours];
    const TensorInfo& info = file.info(hf);
    if (c10::IntArrayRef(info.shape) != param.sizes())
      throw Error(file.path().string() + ": tensor `" + hf + "` has shape " + shape_str(info.shape) +
                  ", config.json implies " + shape_str(param.sizes()));
    if (!c10::isFloatingType(info.dtype))
      throw Error(file.path().string() + ": tensor `" + hf + "` has non-float dtype " + dtype_name(info.dtype));
    param.copy_(file.tensor(hf));
    used.insert(hf);
  }
  for (const auto& [name, file] : ck.where) {
    if (used.count(name)) continue;
    // Tolerated as transformers does: an lm_head beside tied embeddings, old rotary buffers.
    if (name == "lm_head.weight" && model->config.tie_word_embeddings) continue;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    throw Error(file->path().string() + ": unexpected tensor `" + name + "` (not part of a " +
                model->config.model_type + " model with this config.json)");
  }
}

void save_pretrained(Transformer& model, const fs::path& dir, const SaveOptions& options) {
  for (const auto& item : model->named_parameters())
    if (item.key().find("lora_") != std::string::npos)
      throw Error("save_pretrained(" + dir.string() + "): merge the LoRA adapters first (`" + item.key() + "`)");
  const fs::path target = fs::absolute(dir);
  if (!target.parent_path().empty()) fs::create_directories(target.parent_path());
  const fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  auto params = model->named_parameters();
  NamedTensors tensors;
  int64_t total = 0;
  torch::ScalarType dtype = torch::kFloat32;
  for (const auto& [hf, ours] : hf_weight_table(model->config)) {
    tensors.emplace_back(hf, params[ours]);
    total += params[ours].numel() * params[ours].element_size();
    dtype = params[ours].scalar_type();
  }

  nlohmann::json config = model->config.raw;
  config["torch_dtype"] = dtype_config_name(dtype);
  config["tie_word_embeddings"] = model->config.tie_word_embeddings;
  if (!config.contains("architectures")) config["architectures"] = {model->config.architecture};
  if (!config.contains("model_type")) config["model_type"] = model->config.model_type;
  try {
    util::write_file_durably(tmp / "config.json", config.dump(2) + "\n");
    write_weight_files(tmp, tensors, total, options.max_shard_bytes);
    if (!options.copy_files_from.empty())
      for (const auto& f : kTokenizerFiles)
        if (fs::exists(options.copy_files_from / f))
          util::copy_file_durably(options.copy_files_from / f, tmp / f);
    // Swap in: the old DIR (if any) is removed only after the new one is in place.
    util::install_directory(tmp, target);
  } catch (...) {
    util::remove_quietly(tmp);  // a full disk leaves no half-written folder behind
    throw;
  }
}

}  // namespace bireco::model
