// Stage-II step time and peak memory: one InfoNCE forward + backward (queries, positives, one
// hard negative each) with LoRA r 16 on every projection, the plain path (all texts' graphs
// alive at once) against GradCache (objective::Contrastive with gradcache_chunk). Each
// configuration runs in a forked child so its RSS high-water mark (VmHWM) is its own.
//   bench_stage2_step [--shape mini|small|1b] [--batch 16] [--length 64] [--chunk 4] [--steps 2]
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "bench_common.h"
#include "random_batch.h"
#include "bireco/util/compat.h"
#include "bireco/model/load.h"
#include "bireco/model/lora.h"
#include "bireco/objective/contrastive.h"

using namespace bireco;

namespace {

struct Result {
  double texts_per_s, step_s, base_rss_mib, peak_mib, loss;
};


// chunk == 0: the plain path; chunk > 0: GradCache.
Result run(const std::string& shape, int64_t B, int64_t T, int64_t chunk, int steps) {
  torch::manual_seed(1);
  model::Transformer m(model::parse_model_config(bench::llama_shape_config(shape), shape));
  model::init_random(m, 1);
  model::apply_lora(m, config::LoraConfig{}, 2);  // the authors' r 16, alpha 32, dropout 0.05
  m->train();
  const int64_t V = m->config.vocab_size;
  data::Batch batch;
  batch.queries = bench::random_block(B, T, V, false);
  batch.positives = bench::random_block(B, T, V, false);
  batch.negatives = bench::random_block(B, T, V, false);
  objective::ContrastiveOptions o;
  o.gradcache_chunk = chunk;
  objective::Contrastive contrastive(o);
  double loss = 0;
  auto step = [&] {
    m->zero_grad();
    auto out = contrastive.compute(m, batch, 0, contrastive.count(batch));
    if (!out.backward_done) out.loss.backward();
    loss = out.loss.item<double>();
  };
  step();  // allocates the gradients; not timed
  const double base = bench::status_mib("VmRSS:");
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
  return {3.0 * B / s, s, base, bench::status_mib("VmHWM:"), loss};
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "mini";
  int64_t B = 16, T = 64, chunk = 4;
  int steps = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--shape") shape = v;
    else if (k == "--batch") B = std::stoll(v);
    else if (k == "--length") T = std::stoll(v);
    else if (k == "--chunk") chunk = std::stoll(v);
    else if (k == "--steps") steps = std::stoi(v);
  }
  struct utsname u {};
  ::uname(&u);
  const auto c = model::parse_model_config(bench::llama_shape_config(shape), shape);
  std::printf("bench_stage2_step --shape %s --batch %lld --length %lld --chunk %lld --steps %d\n", shape.c_str(),
              (long long)B, (long long)T, (long long)chunk, steps);
  std::printf("machine: %s %s, %d threads, libtorch %s; model %s: %.0fM parameters, fp32, LoRA r 16 on all "
              "projections, %lld queries + %lld positives + %lld hard negatives of %lld tokens\n",
              u.nodename, u.machine, torch::get_num_threads(), bireco::compat::torch_version().c_str(), shape.c_str(),
              model::count_parameters(c) / 1e6, (long long)B, (long long)B, (long long)B, (long long)T);
  std::printf("| path | texts/s | s/step | RSS after 1st step (MiB) | peak RSS (MiB) | peak - base (MiB) | loss |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  double reference_peak = 0, reference_s = 0;
  for (int64_t variant : {int64_t{0}, chunk}) {
    int status = 0;
    const auto measured = bench::run_in_child<Result>([&] { return run(shape, B, T, variant, steps); }, &status);
    const bool ok = measured.has_value();
    const Result r = measured.value_or(Result{});
    const std::string name = variant == 0 ? "plain" : "GradCache chunk " + std::to_string(variant);
    if (!ok) {
      std::printf("| %s | failed (child status %d) |\n", name.c_str(), status);
      continue;
    }
    if (variant == 0) {
      reference_peak = r.peak_mib - r.base_rss_mib;
      reference_s = r.step_s;
    }
    std::printf("| %s | %.1f | %.2f | %.0f | %.0f | %.0f | %.4f |\n", name.c_str(), r.texts_per_s, r.step_s,
                r.base_rss_mib, r.peak_mib, r.peak_mib - r.base_rss_mib, r.loss);
    if (variant != 0 && reference_peak > 0)
      std::printf("GradCache / plain: peak-above-base memory %.2f, step time %.2f\n",
                  (r.peak_mib - r.base_rss_mib) / reference_peak, r.step_s / reference_s);
  }
  return 0;
}
