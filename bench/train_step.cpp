// The bireco side of bench/run.sh: one training step as the trainer takes it (objective
// forward, backward, gradient clipping at 1.0, AdamW) or one embedding pass, timed per phase,
// on the batches of a bench/workload.py file (real SciFact texts, tokenised by an export's
// tokenizer), which bench/reference/hf_step.py reads too. Prints one JSON line: per-step
// times, real (and padded) tokens of each timed step, per-phase medians, the loss of every
// step, peak memory (VmHWM; CUDA: the caching allocator's peak), so that run.sh can put both
// sides in one table.
//
//   bench_train_step --write-model mini|small|1b|qwen1.5b --out DIR   random model (seed 1), HF layout
//   bench_train_step --stage 1|2 --model DIR --workload FILE [--warmup 1] [--steps 2]
//       [--threads 2] [--checkpointing 1] [--lora-dropout 0.05] [--gradcache-chunk 0] [--gradcache-recompute 1]
//       [--device cpu|cuda] [--dtype float32|bfloat16] [--profile FILE.json]
//       --profile: self time per operator over the first timed step (bench/op_profile.h), in
//       hf_step.py --profile's form; bench/profile_ops.py sets the two side by side
//   bench_train_step --stage embed --model EXPORT_DIR --workload FILE [--batch-tokens 16384]
//       [--save-embeddings FILE.npy]      eval::Encoder::load + encode(texts), tokenising included
//   bench_train_step --stage tokenize --tokenizer DIR_OR_FILE --corpus TEXTS.txt [--steps 3]
//       (one text per line; one thread, encode() per text without special tokens)
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <string>

#include "bench_common.h"
#include "op_profile.h"
#include "bireco/data/collator.h"
#include "bireco/eval/encoder.h"
#include "bireco/model/hf_io.h"
#include "bireco/model/load.h"
#include "bireco/model/lora.h"
#include "bireco/objective/contrastive.h"
#include "bireco/objective/reconstruction.h"
#include "bireco/text/tokenizer.h"
#include "bireco/train/optimizer.h"
#include "bireco/util/compat.h"
#if BIRECO_HAS_NCCL  // a CUDA build (compat.h): the caching allocator's statistics exist
#include <c10/cuda/CUDACachingAllocator.h>
#endif

using namespace bireco;
using Clock = std::chrono::steady_clock;

namespace {

// Waits for the GPU's queued work (timings on CUDA); nothing on the CPU.
void sync(const std::string& device) {
  if (device != "cpu") torch::cuda::synchronize();
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Args {
  std::string stage, model_dir, workload, tokenizer, corpus, save_embeddings, profile;
  int64_t warmup = 1, steps = 2, threads = 2, batch_tokens = 16384, gradcache_chunk = 0;
  std::string device = "cpu", dtype = "float32";
  bool checkpointing = true;
  bool gradcache_recompute = true;
  double lora_dropout = 0.05;
};

nlohmann::json read_workload(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("--workload: cannot read " + path);
  return nlohmann::json::parse(in);
}

// One block of the workload padded as the collator pads (data::pad_block, left padding: the
// trainer's default text.padding_side). prefix_length stays 0: only reference_quirks reads it.
data::TextBlock workload_block(const nlohmann::json& rows, int32_t pad_id, const std::string& device) {
  std::vector<text::EncodedText> texts;
  for (const auto& r : rows) texts.push_back({r.get<std::vector<int32_t>>(), 0});
  auto b = data::pad_block(texts, pad_id, data::PaddingSide::kLeft);
  const torch::Device d(device);
  for (auto* t : {&b.input_ids, &b.attention_mask, &b.position_ids, &b.last_index, &b.prefix_length}) *t = t->to(d);
  return b;
}

int64_t real_tokens(const nlohmann::json& rows) {
  int64_t n = 0;
  for (const auto& r : rows) n += static_cast<int64_t>(r.size());
  return n;
}

model::Transformer load_model(const Args& a) {
  model::Transformer m(model::parse_model_config(nlohmann::json::parse(std::ifstream(a.model_dir + "/config.json")),
                                                 a.model_dir + "/config.json"));
  model::load_hf_weights(m, a.model_dir);
  m->to(torch::Device(a.device), model::parse_dtype(a.dtype, "--dtype"));
  return m;
}

// [N, C] float32 as a NumPy .npy file (format 1.0: magic, header length, a dict padded to 64).
void save_npy(const torch::Tensor& e, const std::string& path) {
  auto c = e.to(torch::kFloat32).contiguous().cpu();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(c.size(0)) + ", " +
                       std::to_string(c.size(1)) + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ').push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t n = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&n), 2);
  out << header;
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * sizeof(float)));
  if (!out) throw Error("--save-embeddings: cannot write " + path);
}

nlohmann::json run_embed(const Args& a) {
  torch::NoGradGuard no_grad;
  const auto w = read_workload(a.workload);
  const auto texts = w.at("texts").get<std::vector<std::string>>();
  auto settings = eval::EncoderSettings::from_model_dir(a.model_dir);
  settings.batch_tokens = a.batch_tokens;
  settings.show_progress = false;
  settings.dtype = a.dtype;
  auto encoder = eval::Encoder::load(a.model_dir, a.device, settings);
  int64_t tokens = 0;
  for (const auto& ids : encoder.tokenize(texts, "")) tokens += static_cast<int64_t>(ids.size());
  const double loaded = bench::status_mib("VmRSS:");
  nlohmann::json steps = nlohmann::json::array(), counts = nlohmann::json::array(),
                 padded = nlohmann::json::array();
  torch::Tensor e;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    const auto t0 = Clock::now();
    e = encoder.encode(texts);  // tokenising, batching, forward, pooling, normalising
    sync(a.device);
    if (s >= a.warmup) {
      steps.push_back(since(t0));
      counts.push_back(tokens);
      padded.push_back(encoder.last_tokens());
    }
  }
  if (!a.save_embeddings.empty()) save_npy(e, a.save_embeddings);
  return {{"steps_s", steps}, {"tokens", counts}, {"padded_tokens", padded},
          {"checksum", e.to(torch::kFloat64).abs().sum().item<double>()}, {"loss", nlohmann::json::array()},
          {"phases_s", nlohmann::json::object()}, {"loaded_rss_mb", loaded}};
}

nlohmann::json run_tokenize(const Args& a) {
  auto tokenizer = text::Tokenizer::load(a.tokenizer);
  std::ifstream in(a.corpus);
  if (!in) throw Error("--corpus: cannot read " + a.corpus);
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(line);
  nlohmann::json steps = nlohmann::json::array(), counts = nlohmann::json::array();
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    const auto t0 = Clock::now();
    int64_t n = 0;
    for (const auto& t : texts) n += static_cast<int64_t>(tokenizer->encode(t).size());
    if (s >= a.warmup) {
      steps.push_back(since(t0));
      counts.push_back(n);
    }
  }
  return {{"steps_s", steps}, {"tokens", counts}, {"loss", nlohmann::json::array()},
          {"phases_s", nlohmann::json::object()}};
}

nlohmann::json run_train(const Args& a) {
  const auto w = read_workload(a.workload);
  const bool stage1 = a.stage == "1";
  auto m = load_model(a);
  if (!stage1) {
    config::LoraConfig lora;
    lora.dropout = a.lora_dropout;
    model::apply_lora(m, lora, 2);
  }
  m->train();
  m->gradient_checkpointing = a.checkpointing;
  // The objectives as the trainer builds them from a default config: default options, the
  // tokenizer's EOS for reconstruction.
  std::unique_ptr<objective::Objective> objective;
  if (stage1) {
    objective::ReconstructionOptions o;
    o.eos_id = w.at("eos_id").get<int64_t>();
    objective = std::make_unique<objective::Reconstruction>(o);
  } else {
    objective::ContrastiveOptions o;
    o.gradcache_chunk = a.gradcache_chunk;
    o.gradcache_recompute = a.gradcache_recompute;
    objective = std::make_unique<objective::Contrastive>(o);
  }
  auto optimizer = train::make_adamw(m, config::OptimConfig{});
  std::vector<torch::Tensor> parameters;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) parameters.push_back(p);

  // Step s takes workload batch s (cycling), built before the clock starts, as hf_step.py does.
  const auto pad_id = w.at("pad_id").get<int32_t>();
  const auto& raw = w.at("batches");
  std::vector<data::Batch> batches;
  std::vector<objective::Sums> totals;
  std::vector<int64_t> real, padded;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    const auto& r = raw.at(static_cast<size_t>(s) % raw.size());
    data::Batch b;
    b.queries = workload_block(r.at("queries"), pad_id, a.device);
    b.positives = workload_block(r.at("positives"), pad_id, a.device);
    if (!stage1) b.negatives = workload_block(r.at("negatives"), pad_id, a.device);
    // Tokens through the model: stage I encodes both texts and rebuilds both (each with its
    // prefix slot); stage II encodes query, positive and hard negative once.
    const int64_t B = b.queries.rows(), q = real_tokens(r.at("queries")), p = real_tokens(r.at("positives"));
    const int64_t Tq = b.queries.input_ids.size(1), Tp = b.positives.input_ids.size(1);
    if (stage1) {
      real.push_back(2 * (q + p) + 2 * B);
      padded.push_back(2 * B * (Tq + Tp) + 2 * B);
    } else {
      real.push_back(q + p + real_tokens(r.at("negatives")));
      padded.push_back(B * (Tq + Tp + b.negatives.input_ids.size(1)));
    }
    totals.push_back(objective->count(b));
    batches.push_back(std::move(b));
  }
  const double loaded = bench::status_mib("VmRSS:");

  nlohmann::json steps = nlohmann::json::array(), losses = nlohmann::json::array(), cpu = nlohmann::json::array(),
                 tokens = nlohmann::json::array(), padded_tokens = nlohmann::json::array();
  std::map<std::string, std::vector<double>> phases;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    const auto& batch = batches[static_cast<size_t>(s)];
    std::optional<bench::OpProfile> profile;
    if (!a.profile.empty() && s == a.warmup) profile.emplace();
    const auto t0 = Clock::now();
    const std::clock_t c0 = std::clock();
    optimizer->zero_grad();
    auto out = objective->compute(m, batch, s, totals[static_cast<size_t>(s)]);  // GradCache backwards inside
    sync(a.device);
    const double forward_s = since(t0);
    if (!out.backward_done) out.loss.backward();
    sync(a.device);
    const double backward_s = since(t0) - forward_s;
    torch::nn::utils::clip_grad_norm_(parameters, 1.0);
    sync(a.device);
    const double clip_s = since(t0) - forward_s - backward_s;
    optimizer->step();
    sync(a.device);
    const double total = since(t0);
    if (profile) profile->write(a.profile, total);
    losses.push_back(out.loss.item<double>());
    if (s < a.warmup) continue;
    steps.push_back(total);
    tokens.push_back(real[static_cast<size_t>(s)]);
    padded_tokens.push_back(padded[static_cast<size_t>(s)]);
    cpu.push_back(static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
    // Under GradCache "forward" holds the whole objective (its backward runs inside).
    phases["forward"].push_back(forward_s);
    phases["backward"].push_back(backward_s);
    phases["clip"].push_back(clip_s);
    phases["optimizer"].push_back(total - forward_s - backward_s - clip_s);
  }
  nlohmann::json phase_medians = nlohmann::json::object();
  for (auto& [name, v] : phases) {
    std::sort(v.begin(), v.end());
    phase_medians[name] = v[v.size() / 2];
  }
  return {{"steps_s", steps}, {"cpu_s", cpu}, {"tokens", tokens}, {"padded_tokens", padded_tokens},
          {"loss", losses}, {"phases_s", phase_medians}, {"loaded_rss_mb", loaded}};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  std::string write_shape, out_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--write-model") write_shape = v;
    else if (k == "--out") out_dir = v;
    else if (k == "--stage") a.stage = v;
    else if (k == "--model") a.model_dir = v;
    else if (k == "--workload") a.workload = v;
    else if (k == "--tokenizer") a.tokenizer = v;
    else if (k == "--device") a.device = v;
    else if (k == "--dtype") a.dtype = v;
    else if (k == "--corpus") a.corpus = v;
    else if (k == "--save-embeddings") a.save_embeddings = v;
    else if (k == "--profile") a.profile = v;
    else if (k == "--warmup") a.warmup = std::stoll(v);
    else if (k == "--steps") a.steps = std::stoll(v);
    else if (k == "--threads") a.threads = std::stoll(v);
    else if (k == "--batch-tokens") a.batch_tokens = std::stoll(v);
    else if (k == "--gradcache-chunk") a.gradcache_chunk = std::stoll(v);
    else if (k == "--gradcache-recompute") a.gradcache_recompute = v != "0";
    else if (k == "--checkpointing") a.checkpointing = v != "0";
    else if (k == "--lora-dropout") a.lora_dropout = std::stod(v);
    else {
      std::fprintf(stderr, "bench_train_step: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    if (!write_shape.empty()) {
      auto config = bench::llama_shape_config(write_shape);
      model::Transformer m(model::parse_model_config(config, write_shape));
      model::init_random(m, 1);
      model::save_pretrained(m, out_dir);
      return 0;
    }
    if (a.stage != "tokenize" && a.workload.empty()) throw Error("--workload FILE is needed (bench/workload.py)");
    torch::set_num_threads(static_cast<int>(a.threads));
    const double start_mib = bench::status_mib("VmRSS:");
    nlohmann::json j = a.stage == "embed" ? run_embed(a) : a.stage == "tokenize" ? run_tokenize(a) : run_train(a);
    j["impl"] = "bireco";
    j["stage"] = a.stage;
    j["threads"] = torch::get_num_threads();
    j["torch"] = compat::torch_version();
    j["dtype"] = a.dtype;
    j["peak_mb"] = bench::status_mib("VmHWM:");
#if BIRECO_HAS_NCCL  // UNTESTED: no GPU was available when this was written
    if (a.device != "cpu") {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
      const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
      j["peak_mb"] = static_cast<double>(stats.allocated_bytes[aggregate].peak) / (1024.0 * 1024.0);
    }
#endif
    j["start_rss_mb"] = start_mib;
    std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
