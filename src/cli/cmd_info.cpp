// `bireco info`: the build (LibTorch, CUDA, NCCL, Gloo) and, with --model, a model directory:
// architecture, parameters, memory; a folder with a manifest.json (a bireco checkpoint or
// export) is verified file by file first (exit 1 naming the bad file), which is how
// scripts/chaos.sh and users check a checkpoint is readable.
#include <ATen/detail/CUDAHooksInterface.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "bireco/cli/command.h"
#include "bireco/config/document.h"
#include "bireco/config/load.h"
#include "bireco/model/load.h"
#include "bireco/model/model_config.h"
#include "bireco/train/precision.h"
#include "bireco/util/compat.h"
#include "bireco/util/error.h"
#include "bireco/util/manifest.h"

namespace bireco::cli {
namespace {

// Trainable LoRA parameters of `lora` on config `c`, counted from shapes alone.
int64_t lora_parameters(const model::ModelConfig& c, const config::LoraConfig& lora) {
  const int64_t C = c.hidden_size, D = c.head_dim, H = c.num_attention_heads, K = c.num_key_value_heads,
                I = c.intermediate_size;
  int64_t per_layer = 0;
  for (std::string t : lora.targets) {
    if (t.size() < 5 || t.substr(t.size() - 5) != "_proj") t += "_proj";
    const std::map<std::string, std::pair<int64_t, int64_t>> shapes = {
        {"q_proj", {C, H * D}}, {"k_proj", {C, K * D}},    {"v_proj", {C, K * D}}, {"o_proj", {H * D, C}},
        {"gate_proj", {C, I}},  {"up_proj", {C, I}},       {"down_proj", {I, C}}};
    const auto it = shapes.find(t);
    if (it == shapes.end()) throw Error("model.lora.targets: unknown target `" + t + "`");
    per_layer += lora.r * (it->second.first + it->second.second);
  }
  return per_layer * c.num_hidden_layers;
}

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  return buf;
}

// "13.0" from CUDA's integer version 13000.
std::string cuda_version(long v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

// What this binary was built against and what it can use on this machine.
void print_build() {
  const auto& cuda = at::detail::getCUDAHooks();
  std::cout << "bireco           " << BIRECO_VERSION << "\n"
            << "libtorch         " << compat::torch_version();
  if (cuda.hasCUDART())
    std::cout << " (CUDA " << cuda_version(cuda.versionCUDART()) << " build)";
  else
    std::cout << " (CPU-only build)";
  std::cout << "\ncuda available   ";
  if (compat::cuda_available())
    std::cout << "yes, " << cuda.getNumGPUs() << " device(s)";
  else
    std::cout << "no (no CUDA device or driver here: training runs on the CPU)";
  std::cout << "\nc10d backends    gloo" << (compat::kHasNccl ? ", nccl" : "") << "\n"
            << "cpu threads      " << torch::get_num_threads() << "\n";
}

// Per-rank memory of a `world`-rank run with `stage`'s dist.shard, for each precision: the
// weights (frozen ones included), gradients, master weights and AdamW moments, so a run can be
// sized before it is queued (activations not included).
void print_rank_memory(const config::StageConfig& stage, int64_t trainable, int64_t frozen,
                       int world) {
  const std::string& shard = stage.dist.shard;
  std::cout << "per rank         dist.shard " << shard << ", " << world << " rank(s)"
            << (shard != "none" && world == 1 ? " (one rank: nothing to shard)" : "")
            << "; activations extra\n";
  auto cell = [](double bytes) {
    std::ostringstream out;
    out << std::setw(11) << gib(bytes);
    return out.str();
  };
  std::cout << "  precision       weights   gradients      master     moments       total\n";
  for (const std::string precision : {"fp32", "bf16", "bf16-mixed"}) {
    const auto plan = train::plan_precision(precision, "auto", torch::kCPU);
    const auto rb = train::trainable_bytes_per_rank(plan, shard, world);
    const double weights = trainable * rb.weight + frozen * train::frozen_bytes_per_parameter(plan);
    const double gradients = trainable * rb.gradient, master = trainable * rb.master,
                 moments = trainable * rb.moments;
    std::cout << "  " << std::left << std::setw(11) << precision << std::right << " "
              << cell(weights) << " " << cell(gradients) << " " << cell(master) << " "
              << cell(moments) << " " << cell(weights + gradients + master + moments) << "\n";
  }
}

}  // namespace

Command add_info(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> overrides;
    int world_size = 1;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("info",
                                 "describe the build (LibTorch, CUDA, NCCL) and a model directory: "
                                 "architecture, parameters, memory");
  sub->add_option("--model", o->model, "Hugging Face model directory");
  sub->add_option("--set", o->overrides,
                  "stage-config overrides, e.g. model.lora.r=16, train.precision=bf16-mixed, "
                  "dist.shard=optimizer");
  sub->add_option("--world-size", o->world_size,
                  "data-parallel ranks to size the per-rank memory for (with dist.shard)")
      ->check(CLI::PositiveNumber);
  return {sub, [o]() -> int {
            print_build();
            if (o->model.empty()) return kExitOk;
            if (util::has_manifest(o->model)) {
              util::verify_manifest(o->model, util::ManifestCheck::kChecksums);
              std::cout << "manifest         " << util::read_manifest(o->model).size()
                        << " files, sizes and xxh64 verified\n";
            }
            const model::ModelConfig c = model::read_model_config(o->model);
            // The overrides go through the regular stage-config reader (types, names, errors).
            config::Document doc;
            doc.root = {{"model", {{"path", o->model}}}};
            for (const auto& s : o->overrides) config::apply_override(doc, s);
            const config::StageConfig stage = config::read_stage(doc);
            const config::ModelConfig& mc = stage.model;
            const int64_t total = model::count_parameters(c);
            const int64_t lora = mc.use_lora ? lora_parameters(c, mc.lora) : 0;
            const int64_t trainable = mc.use_lora ? lora : total;
            const int64_t frozen = mc.use_lora ? total : 0;  // full fine-tuning trains every weight
            // What the trainer would hold per parameter (train/precision.h), on the device it
            // would pick here.
            const auto plan =
                train::plan_precision(stage.train.precision, mc.dtype,
                                      model::parse_device(mc.device == "auto" ? "cpu" : mc.device));
            const double frozen_bytes = train::frozen_bytes_per_parameter(plan);
            const double trainable_bytes = train::trainable_bytes_per_parameter(plan);
            const double inference_bytes = static_cast<double>(c10::elementSize(plan.frozen));
            std::cout << "architecture     " << c.architecture << " (model_type " << c.model_type
                      << ")\n"
                      << "layers           " << c.num_hidden_layers << ", hidden " << c.hidden_size
                      << ", heads " << c.num_attention_heads << " (kv " << c.num_key_value_heads
                      << ", head_dim " << c.head_dim << "), intermediate " << c.intermediate_size
                      << ", vocab " << c.vocab_size << "\n"
                      << "rope             theta " << c.rope_theta << ", scaling "
                      << c.rope_scaling.type << "\n"
                      << "tied lm_head     " << (c.tie_word_embeddings ? "yes" : "no") << "\n"
                      << "parameters       " << total << " total, " << trainable << " trainable"
                      << (mc.use_lora ? " (LoRA r=" + std::to_string(mc.lora.r) + ")" : "") << "\n"
                      << "precision        " << plan.precision << ": frozen weights "
                      << frozen_bytes << " B/param (" << c10::toString(plan.frozen)
                      << "), trainable " << trainable_bytes << " B/param ("
                      << c10::toString(plan.trainable) << " weight, gradient, 2 AdamW moments)"
                      << (plan.autocast ? ", bf16 autocast compute" : "") << "\n"
                      << "memory           weights " << gib(total * inference_bytes) << " in "
                      << c10::toString(plan.frozen)
                      << "; training (weights, grads, AdamW states; activations extra) "
                      << gib(frozen * frozen_bytes + trainable * trainable_bytes) << "\n";
            print_rank_memory(stage, trainable, frozen, o->world_size);
            return kExitOk;
          }};
}

}  // namespace bireco::cli
