// Hugging Face checkpoint IO: the one table from transformers' parameter names to ours,
// loading a model directory (single or sharded safetensors) and writing one back that
// `AutoModel.from_pretrained(dir)` loads.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "bireco/model/transformer.h"

namespace bireco::model {

// (Hugging Face name, bireco name) for every base-model parameter of `config`, in order.
// e.g. ("model.layers.0.self_attn.q_proj.weight", "layers.0.self_attn.q_proj.weight").
std::vector<std::pair<std::string, std::string>> hf_weight_table(const ModelConfig& config);

// Reads DIR's weights into `model`, converting to the model's dtype and device. Reads
// model.safetensors or model.safetensors.index.json (shards); also accepts a bare base
// model's names (no `model.` prefix, as AutoModel writes). Errors name the tensor and file:
// missing, unexpected, mis-shaped. Untrusted input is only parsed, never executed: pickle
// weights (pytorch_model.bin, *.pt, ...) are refused with the command that converts them, and
// an index naming a shard outside DIR is refused naming the index file and key. When DIR has a
// manifest.json (a bireco checkpoint), the weight files are checked against it first.
void load_hf_weights(Transformer& model, const std::filesystem::path& dir);

// Tokenizer and generation files copied beside the weights when present.
extern const std::vector<std::string> kTokenizerFiles;

struct SaveOptions {
  std::filesystem::path copy_files_from;  // source model dir (tokenizer files); empty: none
  int64_t max_shard_bytes = 5'000'000'000;  // transformers' default "5GB"
};

// Writes config.json, model.safetensors (or model-0000i-of-0000n.safetensors + index above
// max_shard_bytes) and the tokenizer files to a temporary folder beside DIR, then renames it
// to DIR (replacing an older DIR only once the new one is complete; every file fsynced, and on
// a write error such as a full disk the temporary folder removed). Tied models write no
// lm_head.weight. LoRA adapters must be merged first (Error otherwise).
void save_pretrained(Transformer& model, const std::filesystem::path& dir, const SaveOptions& options = {});

}  // namespace bireco::model
