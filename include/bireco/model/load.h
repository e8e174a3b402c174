// The model module's entry point: a Transformer from the `model:` section of a stage config.
#pragma once

#include <torch/torch.h>

#include <string>

#include "bireco/config/stage_config.h"
#include "bireco/model/transformer.h"

namespace bireco::model {

// Reads PATH/config.json; `init: pretrained` loads its safetensors, `init: random` draws
// seeded weights (init_random). Then casts to model.dtype on model.device, sets attention
// (causal | bidirectional) and gradient checkpointing, and adds LoRA when model.use_lora.
Transformer load(const config::ModelConfig& options, int64_t seed);

// transformers' _init_weights: linear and embedding weights N(0, initializer_range^2),
// biases 0, norm weights 1; seeded, so the same seed gives the same model.
void init_random(Transformer& model, int64_t seed);

// The dtype a Hugging Face folder's config.json says its weights are stored in (`dtype`, or
// `torch_dtype` as transformers wrote it before 4.56 and bireco writes it): "bfloat16",
// "float16", or "float32" (also when it says nothing).
std::string stored_dtype(const std::filesystem::path& dir);

// "float32" | "bfloat16" | "float16" (also "fp32", "bf16", "fp16"); Error naming `key`.
torch::ScalarType parse_dtype(const std::string& name, const std::string& key = "model.dtype");
// parse_dtype's inverse: the name config.json and model.dtype use ("bfloat16", "float16",
// "float32"; any other dtype reads as "float32").
std::string dtype_config_name(torch::ScalarType dtype);

// "auto" (CUDA when available) | "cpu" | "cuda" | "cuda:N".
torch::Device parse_device(const std::string& name);

// Whether bf16 matrix products run natively on `device`, so that `auto` precisions choose bf16
// there: CUDA devices, and CPUs with AMX-BF16 or AVX512-BF16 (oneDNN's bf16 kernels). Elsewhere
// LibTorch emulates them: a bf16 matmul ran 150x slower than fp32 on a 2-core AMD EPYC (Zen 3,
// AVX2 only; 0.43 against 65 GFLOP/s).
bool native_bf16(const torch::Device& device);
// The CPU half of it, from the text of /proc/cpuinfo (its `flags` lines).
bool cpuinfo_has_native_bf16(const std::string& cpuinfo);

}  // namespace bireco::model
