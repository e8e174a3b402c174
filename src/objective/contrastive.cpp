#include "bireco/objective/contrastive.h"

#include "bireco/distributed/all_gather.h"
#include "bireco/distributed/group.h"
#include "bireco/model/rng_state.h"
#include "bireco/objective/reconstruction.h"
#include "bireco/util/compat.h"
#include "bireco/util/error.h"

namespace bireco::objective {
namespace {

// The rows `index` (int64 [R]) of every tensor of a block.
data::TextBlock select_rows(const data::TextBlock& block, const torch::Tensor& index) {
  auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, index.to(t.device())) : t; };
  data::TextBlock out;
  out.input_ids = pick(block.input_ids);
  out.attention_mask = pick(block.attention_mask);
  out.position_ids = pick(block.position_ids);
  out.last_index = pick(block.last_index);
  out.prefix_length = pick(block.prefix_length);
  return out;
}

data::TextBlock slice_rows(const data::TextBlock& block, int64_t begin, int64_t end) {
  return select_rows(block, torch::arange(begin, end, torch::kLong));
}

torch::Tensor embed(model::Transformer& model, const data::TextBlock& block, const ContrastiveOptions& options) {
  ReconstructionOptions encode;  // encode_block reads only `pooling` (and reference_quirks, off)
  encode.pooling = options.pooling;
  return encode_block(model, block, encode);  // (B, C)
}

bool gathers(const ContrastiveOptions& options, distributed::Group* group) {
  return options.gather_across_ranks && group != nullptr && group->world_size() > 1;
}

}  // namespace

ContrastiveOptions contrastive_options(const config::StageConfig& config) {
  const auto& c = config.objective.contrastive;
  ContrastiveOptions o;
  if (c.scale <= 0) throw Error("objective.contrastive.scale: must be positive");
  o.scale = c.scale;
  if (c.similarity != "cosine" && c.similarity != "dot")
    throw Error("objective.contrastive.similarity: '" + c.similarity + "' is not one of cosine, dot");
  o.cosine = c.similarity == "cosine";
  if (c.hard_negatives < 0) throw Error("objective.contrastive.hard_negatives: must be >= 0");
  o.hard_negatives = c.hard_negatives;
  o.gather_across_ranks = c.gather_across_ranks;
  o.symmetric = c.symmetric;
  if (c.gradcache_chunk < 0) throw Error("objective.contrastive.gradcache_chunk: must be >= 0");
  o.gradcache_chunk = c.gradcache_chunk;
  o.gradcache_recompute = c.gradcache_recompute;
  o.pooling = config.model.pooling;
  return o;
}

torch::Tensor similarity_scores(const torch::Tensor& a, const torch::Tensor& b, const ContrastiveOptions& options) {
  // In fp32 under bf16-mixed too: a cosine rounded to bf16 (2^-9) times scale 50 would move
  // the logits by up to 0.1.
  compat::AutocastGuard fp32(a.device(), false);
  auto x = a.to(torch::kFloat32), y = b.to(torch::kFloat32);
  if (options.cosine) {
    namespace F = torch::nn::functional;
    x = F::normalize(x, F::NormalizeFuncOptions().dim(-1));
    y = F::normalize(y, F::NormalizeFuncOptions().dim(-1));
  }
  return torch::matmul(x, y.t()) * options.scale;  // (B, N)
}

InfoNce info_nce(const torch::Tensor& q, const torch::Tensor& p, const torch::Tensor& n,
                 const ContrastiveOptions& options, distributed::Group* group) {
  const int64_t rows = q.size(0);
  TORCH_CHECK(p.size(0) == rows, "info_nce: ", rows, " queries but ", p.size(0), " positives");
  const bool gather = gathers(options, group);
  auto all = [&](const torch::Tensor& x) { return gather ? distributed::all_gather_with_grad(*group, x) : x; };
  // Documents of every rank: [positives of rank 0..W-1, hard negatives of rank 0..W-1].
  auto positives = all(p);                                                  // (W*B, C)
  auto documents = n.defined() && n.size(0) > 0 ? torch::cat({positives, all(n)}, 0) : positives;
  const int64_t offset = gather ? group->rank() * rows : 0;
  auto labels = torch::arange(offset, offset + rows, torch::TensorOptions().dtype(torch::kLong).device(q.device()));

  auto scores = similarity_scores(q, documents, options);  // (B, W*B*(1+k))
  InfoNce out;
  out.sum = torch::nn::functional::cross_entropy(
      scores, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  out.correct = (scores.argmax(1) == labels).sum();
  if (options.symmetric) {
    // Document -> query: each positive against the queries of every rank, its own as target.
    auto reverse = similarity_scores(p, all(q), options);  // (B, W*B)
    auto back = torch::nn::functional::cross_entropy(
        reverse, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    out.sum = (out.sum + back) / 2;
  }
  return out;
}

data::TextBlock Contrastive::used_negatives(const data::Batch& batch) const {
  const int64_t rows = batch.queries.rows(), k = options_.hard_negatives;
  if (k == 0) return {};
  const int64_t available = rows > 0 ? batch.negatives.rows() / rows : 0;
  if (available < k)
    throw Error("objective.contrastive.hard_negatives: " + std::to_string(k) + " per query, but the batch has " +
                std::to_string(available));
  if (available == k) return batch.negatives;
  // Row i*available + j for j < k: record i's first k negatives, in the same i*k + j layout.
  auto index = (torch::arange(rows, torch::kLong).unsqueeze(1) * available + torch::arange(k, torch::kLong).unsqueeze(0))
                   .reshape({-1});
  return select_rows(batch.negatives, index);
}

Sums Contrastive::count(const data::Batch& batch) const {
  return {{"queries", static_cast<double>(batch.queries.rows())}};
}

ObjectiveOutput Contrastive::compute(model::Transformer& model, const data::Batch& batch, int64_t /*step*/,
                                     const Sums& totals) {
  const double total = std::max(1.0, totals.at("queries"));
  auto out = options_.gradcache_chunk > 0 ? compute_gradcache(model, batch, total) : compute_plain(model, batch, total);
  out.metrics["queries"] = static_cast<double>(batch.queries.rows());
  out.device_metrics["loss"] = out.loss.detach();
  out.tokens = batch.queries.attention_mask.sum().item<int64_t>() + batch.positives.attention_mask.sum().item<int64_t>();
  if (batch.negatives.input_ids.defined()) out.tokens += batch.negatives.attention_mask.sum().item<int64_t>();
  return out;
}

ObjectiveOutput Contrastive::compute_plain(model::Transformer& model, const data::Batch& batch, double total) {
  const auto negatives = used_negatives(batch);
  auto q = embed(model, batch.queries, options_);
  auto p = embed(model, batch.positives, options_);
  auto n = negatives.rows() > 0 ? embed(model, negatives, options_) : torch::Tensor();
  auto loss = info_nce(q, p, n, options_, group_);
  ObjectiveOutput out;
  out.loss = loss.sum / total;
  out.device_metrics["correct"] = loss.correct;
  return out;
}

// GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
// Limited Setup"): the loss couples every text of the batch, but its gradient with respect to
// the parameters factors through the embeddings, dL/dθ = Σ_t dL/de_t · de_t/dθ. So:
//   1. Split the queries, positives and used negatives into chunks of gradcache_chunk texts.
//   2. Embed every chunk without a graph (NoGradGuard), first saving the generator states
//      (CPU and the model's GPU) so that the chunk's dropout masks can be replayed in step 5.
//   3. Concatenate the chunk embeddings into leaf tensors q, p, n that require grad.
//   4. Compute the loss on the leaves (gathered across ranks as in the plain path) and
//      backward it: this fills q.grad, p.grad, n.grad = dL/de and touches no parameter.
//   5. For each chunk: restore its generator state, embed it again with a graph and
//      backward(embedding, its slice of the cached gradient): parameter gradients accumulate
//      chunk by chunk, so only one chunk's activations are alive at a time.
//   6. Return the loss detached with backward_done = true: the trainer must not backward it.
// Cost: every text is encoded twice (about +1/3 compute for a forward:backward of 1:2; with
// gradient checkpointing the pass in step 5 recomputes too, unless gradcache_recompute is off).
ObjectiveOutput Contrastive::compute_gradcache(model::Transformer& model, const data::Batch& batch, double total) {
  const int64_t chunk = options_.gradcache_chunk;
  const data::TextBlock negatives = used_negatives(batch);
  struct Chunk {
    const data::TextBlock* block;
    int64_t begin, end;
    model::RngState rng;  // before the chunk's first pass (CPU and the model's GPU)
  };
  // 1.
  std::vector<Chunk> chunks;
  for (const data::TextBlock* block : {&batch.queries, &batch.positives, &negatives})
    for (int64_t begin = 0; begin < block->rows(); begin += chunk)
      chunks.push_back({block, begin, std::min(begin + chunk, block->rows()), model::RngState()});
  // 2.
  const auto device = model->embed->weight.device();
  std::vector<torch::Tensor> cached;
  {
    torch::NoGradGuard no_grad;
    // Under bf16-mixed: casts of the weights cached now would carry no autograd history and,
    // reused by step 5, would stop the weights' gradients (compat::AutocastState::cache).
    compat::AutocastGuard no_cast_cache(compat::autocast_state_without_cache());
    for (auto& c : chunks) {
      c.rng = model::RngState::capture(device);
      cached.push_back(embed(model, slice_rows(*c.block, c.begin, c.end), options_));
    }
  }
  // 3. Chunks are in block order: queries, then positives, then negatives.
  auto leaf_of = [&](const data::TextBlock* block) {
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < chunks.size(); ++i)
      if (chunks[i].block == block) parts.push_back(cached[i]);
    if (parts.empty()) return torch::Tensor();
    return torch::cat(parts, 0).detach().requires_grad_(true);
  };
  auto q = leaf_of(&batch.queries), p = leaf_of(&batch.positives), n = leaf_of(&negatives);
  // 4.
  auto loss = info_nce(q, p, n, options_, group_);
  auto share = loss.sum / total;
  std::vector<torch::Tensor> leaves = {q, p};
  if (n.defined()) leaves.push_back(n);
  // Backward passes run outside autocast, as the trainer runs the plain path's: inside it,
  // the fp32 backward matmuls (scores, RMSNorm) would be recast to bf16.
  std::vector<torch::Tensor> grads;
  {
    compat::AutocastGuard no_autocast(device, false);
    grads = torch::autograd::grad({share}, leaves);
  }
  // 5.
  const auto after_first_pass = model::RngState::capture(device);
  // Without recomputation each chunk's pass keeps its activations: one forward per chunk
  // fewer, at the memory of one chunk (what GradCache bounds) instead of one checkpointed one.
  const bool checkpointing = model->gradient_checkpointing;
  if (!options_.gradcache_recompute) model->gradient_checkpointing = false;
  struct RestoreCheckpointing {
    model::Transformer& model;
    bool value;
    ~RestoreCheckpointing() { model->gradient_checkpointing = value; }
  } restore_checkpointing{model, checkpointing};
  for (const auto& c : chunks) {
    const size_t which = c.block == &batch.queries ? 0 : c.block == &batch.positives ? 1 : 2;
    c.rng.restore();
    auto e = embed(model, slice_rows(*c.block, c.begin, c.end), options_);
    compat::AutocastGuard no_autocast(device, false);
    e.backward(grads[which].slice(0, c.begin, c.end).to(e.dtype()));
  }
  after_first_pass.restore();
  // 6.
  ObjectiveOutput out;
  out.loss = share.detach();
  out.backward_done = true;
  out.device_metrics["correct"] = loss.correct;
  return out;
}

std::map<std::string, double> Contrastive::finish(const Sums& sums) const {
  auto m = sums;
  const double queries = sums.count("queries") ? sums.at("queries") : 0.0;
  m["accuracy"] = queries > 0 ? sums.at("correct") / queries : 0.0;
  m.erase("correct");
  return m;
}

}  // namespace bireco::objective
