// Stage-I step time, tokens/s and peak memory: one EBD2Q + EBQ2D forward + backward on random
// pairs, the LM head + cross-entropy chunked (objective::chunked_token_loss, its head gradient
// fused into forward and recomputed in backward) against the plain reference that materialises
// every logit (objective::plain_token_loss). Each configuration
// runs in a forked child so its RSS high-water mark (VmHWM) is its own.
//   bench_stage1_step [--shape mini|small|1b] [--batch 4] [--query 32] [--doc 64] [--chunk 1024] [--steps 2]
//                     [--precision fp32|bf16-mixed|bf16]  (train.precision: bf16-mixed = fp32 weights, bf16 autocast)
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>

#include "bench_common.h"
#include "random_batch.h"
#include "bireco/util/compat.h"
#include "bireco/model/load.h"
#include "bireco/objective/reconstruction.h"

using namespace bireco;

namespace {

struct Result {
  double tokens_per_s, step_s, base_rss_mib, peak_mib, loss;
};


// chunk > 0: the chunked loss; chunk == 0: the plain reference (all logits at once).
Result run(const std::string& shape, int64_t B, int64_t Tq, int64_t Td, int64_t chunk,
           objective::HeadGradient head_gradient, int steps, const std::string& precision) {
  torch::manual_seed(1);
  model::Transformer m(model::parse_model_config(bench::llama_shape_config(shape), shape));
  model::init_random(m, 1);
  if (precision == "bf16") m->to(torch::kBFloat16);
  m->train();
  m->gradient_checkpointing = true;  // as the authors' runs
  const int64_t V = m->config.vocab_size;
  auto queries = bench::random_block(B, Tq, V, true), docs = bench::random_block(B, Td, V, true);
  objective::ReconstructionOptions o;
  o.eos_id = 2;
  o.chunk_tokens = chunk;
  o.head_gradient = head_gradient;
  auto direction = [&](const data::TextBlock& source, const data::TextBlock& target) {
    auto prefix = objective::encode_block(m, source, o);
    if (chunk > 0) {
      auto l = objective::reconstruction_loss(m, prefix, target, o);
      return l.sum / l.tokens;
    }
    auto in = objective::reconstruction_inputs(m, prefix, target, o);
    auto h = m->forward_embeds(in.embeds, in.attention_mask).last_hidden_state;
    auto l = objective::plain_token_loss(h, objective::head_weight(m), in.labels);
    return l.sum / l.tokens;
  };
  double loss = 0;
  auto step = [&] {
    m->zero_grad();
    torch::Tensor total;
    {
      bireco::compat::AutocastGuard autocast(torch::Device(torch::kCPU), precision == "bf16-mixed");
      total = 0.8 * direction(docs, queries) + 0.2 * direction(queries, docs);
    }
    total.backward();
    loss = total.item<double>();
  };
  step();  // allocates the gradients; not timed
  const double base = bench::status_mib("VmRSS:");
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
  // Tokens through the model per step: two encodings and two reconstructions.
  const double tokens = 2.0 * B * (Tq + Td) + 2.0 * B;
  return {tokens / s, s, base, bench::status_mib("VmHWM:"), loss};
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "mini";
  int64_t B = 4, Tq = 32, Td = 64, chunk = 1024;
  int steps = 2;
  std::string precision = "fp32";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--shape") shape = v;
    else if (k == "--batch") B = std::stoll(v);
    else if (k == "--query") Tq = std::stoll(v);
    else if (k == "--doc") Td = std::stoll(v);
    else if (k == "--chunk") chunk = std::stoll(v);
    else if (k == "--steps") steps = std::stoi(v);
    else if (k == "--precision") precision = v;
  }
  struct utsname u {};
  ::uname(&u);
  const auto c = model::parse_model_config(bench::llama_shape_config(shape), shape);
  if (precision != "fp32" && precision != "bf16-mixed" && precision != "bf16") {
    std::fprintf(stderr, "--precision: '%s' is not one of fp32, bf16-mixed, bf16\n", precision.c_str());
    return 2;
  }
  std::printf("bench_stage1_step --shape %s --batch %lld --query %lld --doc %lld --chunk %lld --steps %d --precision %s\n",
              shape.c_str(), (long long)B, (long long)Tq, (long long)Td, (long long)chunk, steps, precision.c_str());
  std::printf("machine: %s %s, %d threads, libtorch %s; model %s: %.0fM parameters, V %lld, %s, "
              "gradient checkpointing, full fine-tuning\n",
              u.nodename, u.machine, torch::get_num_threads(), bireco::compat::torch_version().c_str(), shape.c_str(),
              model::count_parameters(c) / 1e6, (long long)c.vocab_size, precision.c_str());
  std::printf("| loss path | tokens/s | s/step | RSS after 1st step (MiB) | peak RSS (MiB) | peak - base (MiB) | loss |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  double reference_peak = 0;
  using objective::HeadGradient;
  for (const auto& [variant, head_gradient] :
       {std::pair{int64_t{0}, HeadGradient::kFused}, std::pair{chunk, HeadGradient::kFused},
        std::pair{chunk, HeadGradient::kRecompute}}) {
    int status = 0;
    const auto measured = bench::run_in_child<Result>(
        [&] { return run(shape, B, Tq, Td, variant, head_gradient, steps, precision); }, &status);
    const bool ok = measured.has_value();
    const Result r = measured.value_or(Result{});
    const std::string name =
        variant == 0 ? "plain (all logits)"
                     : "chunked " + std::to_string(variant) +
                           (head_gradient == HeadGradient::kFused ? ", fused head gradient" : ", recompute");
    if (!ok) {
      std::printf("| %s | failed (child status %d) |\n", name.c_str(), status);
      continue;
    }
    if (variant == 0) reference_peak = r.peak_mib - r.base_rss_mib;
    std::printf("| %s | %.1f | %.2f | %.0f | %.0f | %.0f | %.4f |\n", name.c_str(), r.tokens_per_s, r.step_s,
                r.base_rss_mib, r.peak_mib, r.peak_mib - r.base_rss_mib, r.loss);
    if (variant != 0 && reference_peak > 0)
      std::printf("chunked / plain peak-above-base memory: %.2f\n", (r.peak_mib - r.base_rss_mib) / reference_peak);
  }
  return 0;
}
