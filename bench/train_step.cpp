// The bireco side of bench/run.sh: one training step as the trainer takes it (objective
// forward, backward, gradient clipping at 1.0, AdamW) or one embedding pass, timed per phase,
// on a Hugging Face model directory; bench/reference/step.py is the PyTorch side and reads the
// same directory and builds the same inputs (bench_inputs below = step.py's bench_ids()).
// Prints one JSON line: per-step times, per-phase medians, tokens per step, loss of each step
// and peak RSS (VmHWM), so that run.sh can put both sides in one table.
//
//   bench_train_step --write-model mini|small|1b --out DIR        random model (seed 1), HF layout
//   bench_train_step --stage 1|2|embed --model DIR [--batch 4] [--query 32] [--doc 64]
//       [--warmup 1] [--steps 3] [--threads 2] [--chunk 4096] [--checkpointing 1]
//       [--lora-dropout 0.05] [--texts 64] [--batch-tokens 4096] [--device cpu|cuda] [--dtype float32|bfloat16]
//   bench_train_step --stage tokenize --tokenizer DIR_OR_FILE --corpus TEXTS.txt [--steps 3]
//       (one text per line; one thread, encode() per text without special tokens)
#include <chrono>
#include <ctime>
#include <cstdio>
#include <map>
#include <string>

#include "bench_common.h"
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

// Token (r, t) of block `salt`: BOS at column 0, EOS at the last column, otherwise a fixed
// hash of (r, t, salt) in [3, V). step.py's bench_ids() is the same formula.
torch::Tensor bench_ids(int64_t rows, int64_t length, int64_t vocab, int64_t salt) {
  auto r = torch::arange(rows, torch::kLong).unsqueeze(1), t = torch::arange(length, torch::kLong).unsqueeze(0);
  auto ids = (r * 7919 + t * 104729 + salt * 31337) % (vocab - 3) + 3;
  ids.select(1, 0).fill_(1);
  ids.select(1, length - 1).fill_(2);
  return ids;
}

data::TextBlock bench_block(int64_t rows, int64_t length, int64_t vocab, int64_t salt) {
  data::TextBlock b;
  b.input_ids = bench_ids(rows, length, vocab, salt);
  b.attention_mask = torch::ones({rows, length}, torch::kLong);
  return b;
}

// Length of embedding text i: 16 .. max_length, spread deterministically (step.py: the same).
int64_t embed_length(int64_t i, int64_t max_length) { return 16 + (i * 37) % (max_length - 15); }

// Waits for the GPU's queued work (timings on CUDA); nothing on the CPU.
void sync(const std::string& device) {
  if (device != "cpu") torch::cuda::synchronize();
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Args {
  std::string stage, model_dir, tokenizer, corpus;
  int64_t batch = 4, query = 32, doc = 64, warmup = 1, steps = 3, threads = 2, chunk = 4096, texts = 64,
          batch_tokens = 4096;
  std::string device = "cpu", dtype = "float32";
  bool checkpointing = true;
  double lora_dropout = 0.05;
};

model::Transformer load_model(const Args& a) {
  model::Transformer m(model::parse_model_config(nlohmann::json::parse(std::ifstream(a.model_dir + "/config.json")),
                                                 a.model_dir + "/config.json"));
  model::load_hf_weights(m, a.model_dir);
  m->to(torch::Device(a.device), model::parse_dtype(a.dtype, "--dtype"));
  return m;
}

nlohmann::json run_embed(const Args& a) {
  torch::NoGradGuard no_grad;
  auto m = load_model(a);
  m->eval();
  eval::EncoderSettings settings;
  settings.batch_tokens = a.batch_tokens;
  settings.show_progress = false;
  eval::Encoder encoder(m, nullptr, settings);
  const int64_t V = m->config.vocab_size;
  std::vector<std::vector<int32_t>> ids;
  int64_t tokens = 0;
  for (int64_t i = 0; i < a.texts; ++i) {
    const int64_t n = embed_length(i, a.doc);
    auto row = bench_ids(1, n, V, 3 + i).reshape({-1});
    ids.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + n);
    tokens += n;
  }
  nlohmann::json steps = nlohmann::json::array();
  torch::Tensor e;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    const auto t0 = Clock::now();
    e = encoder.encode_ids(ids);
    sync(a.device);
    if (s >= a.warmup) steps.push_back(since(t0));
  }
  return {{"steps_s", steps}, {"tokens_per_step", tokens}, {"checksum", e.abs().sum().item<double>()},
          {"loss", nlohmann::json::array()}, {"phases_s", nlohmann::json::object()}};
}

nlohmann::json run_tokenize(const Args& a) {
  auto tokenizer = text::Tokenizer::load(a.tokenizer);
  std::ifstream in(a.corpus);
  if (!in) throw Error("--corpus: cannot read " + a.corpus);
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(line);
  nlohmann::json steps = nlohmann::json::array();
  int64_t tokens = 0;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    const auto t0 = Clock::now();
    int64_t n = 0;
    for (const auto& t : texts) n += static_cast<int64_t>(tokenizer->encode(t).size());
    if (s >= a.warmup) steps.push_back(since(t0));
    tokens = n;
  }
  return {{"steps_s", steps}, {"tokens_per_step", tokens}, {"loss", nlohmann::json::array()},
          {"phases_s", nlohmann::json::object()}};
}

nlohmann::json run_train(const Args& a) {
  auto m = load_model(a);
  const bool stage1 = a.stage == "1";
  if (!stage1) {
    config::LoraConfig lora;
    lora.dropout = a.lora_dropout;
    model::apply_lora(m, lora, 2);
  }
  m->train();
  m->gradient_checkpointing = a.checkpointing;
  const int64_t V = m->config.vocab_size, B = a.batch;
  data::Batch batch;
  batch.queries = bench_block(B, a.query, V, 0);
  batch.positives = bench_block(B, a.doc, V, 1);
  if (!stage1) batch.negatives = bench_block(B, a.doc, V, 2);
  std::unique_ptr<objective::Objective> objective;
  if (stage1) {
    objective::ReconstructionOptions o;
    o.eos_id = 2;
    o.chunk_tokens = a.chunk;
    objective = std::make_unique<objective::Reconstruction>(o);
  } else {
    objective = std::make_unique<objective::Contrastive>(objective::ContrastiveOptions{});
  }
  auto optimizer = train::make_adamw(m, config::OptimConfig{});
  std::vector<torch::Tensor> parameters;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) parameters.push_back(p);
  const auto totals = objective->count(batch);

  nlohmann::json steps = nlohmann::json::array(), losses = nlohmann::json::array(), cpu = nlohmann::json::array();
  std::map<std::string, std::vector<double>> phases;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    const auto t0 = Clock::now();
    const std::clock_t c0 = std::clock();
    optimizer->zero_grad();
    auto out = objective->compute(m, batch, s, totals);  // GradCache (off here) would backward inside
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
    losses.push_back(out.loss.item<double>());
    if (s < a.warmup) continue;
    steps.push_back(total);
    cpu.push_back(static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
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
  // Tokens through the model per step: stage I encodes both blocks and rebuilds both (each
  // with its prefix slot); stage II encodes queries, positives and hard negatives once.
  const int64_t tokens = stage1 ? 2 * B * (a.query + a.doc) + 2 * B : B * (a.query + 2 * a.doc);
  return {{"steps_s", steps}, {"cpu_s", cpu}, {"tokens_per_step", tokens}, {"loss", losses},
          {"phases_s", phase_medians}};
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
    else if (k == "--tokenizer") a.tokenizer = v;
    else if (k == "--device") a.device = v;
    else if (k == "--dtype") a.dtype = v;
    else if (k == "--corpus") a.corpus = v;
    else if (k == "--batch") a.batch = std::stoll(v);
    else if (k == "--query") a.query = std::stoll(v);
    else if (k == "--doc") a.doc = std::stoll(v);
    else if (k == "--warmup") a.warmup = std::stoll(v);
    else if (k == "--steps") a.steps = std::stoll(v);
    else if (k == "--threads") a.threads = std::stoll(v);
    else if (k == "--chunk") a.chunk = std::stoll(v);
    else if (k == "--texts") a.texts = std::stoll(v);
    else if (k == "--batch-tokens") a.batch_tokens = std::stoll(v);
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
    torch::set_num_threads(static_cast<int>(a.threads));
    const double load_start_mib = bench::status_mib("VmRSS:");
    nlohmann::json j = a.stage == "embed" ? run_embed(a) : a.stage == "tokenize" ? run_tokenize(a) : run_train(a);
    j["impl"] = "bireco";
    j["stage"] = a.stage;
    j["threads"] = torch::get_num_threads();
    j["torch"] = compat::torch_version();
    j["peak_mb"] = bench::status_mib("VmHWM:");
#if BIRECO_HAS_NCCL  // UNTESTED: no GPU was available when this was written
    if (a.device != "cpu") {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
      const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
      j["peak_mb"] = static_cast<double>(stats.allocated_bytes[aggregate].peak) / (1024.0 * 1024.0);
    }
#endif
    j["start_rss_mb"] = load_start_mib;
    std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
