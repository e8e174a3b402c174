#include "bireco/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <future>

#include "bireco/config/load.h"
#include "bireco/data/dataset_checks.h"
#include "bireco/distributed/environment.h"
#include "bireco/distributed/gradient_sync.h"
#include "bireco/distributed/group.h"
#include "bireco/distributed/sharded_optimizer.h"
#include "bireco/model/hf_io.h"
#include "bireco/model/load.h"
#include "bireco/model/lora.h"
#include "bireco/model/rng_state.h"
#include "bireco/model/safetensors.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/evaluation.h"
#include "bireco/train/export.h"
#include "bireco/train/optimizer.h"
#include "bireco/train/resume_check.h"
#include "bireco/train/schedule.h"
#include "bireco/train/stop_signal.h"
#include "bireco/util/compat.h"
#include "bireco/util/error.h"
#include "bireco/util/log.h"
#include "bireco/util/metrics.h"
#include "bireco/util/progress.h"
#include "bireco/util/strings.h"

namespace bireco::train {
namespace fs = std::filesystem;

namespace {

// rng.safetensors names rank 0's generators as they are (the layout of single-process and
// older checkpoints) and rank R's with this prefix.
std::string rng_prefix(int rank) { return rank == 0 ? "" : "rank" + std::to_string(rank) + "."; }

// Every rank's generator states (CPU, and the rank's GPU), named for TrainerState::rng: each
// rank draws its own dropout masks, so each resumes its own streams.
model::NamedTensors gather_rng_states(distributed::Group* group, const torch::Device& device) {
  const auto mine = model::RngState::capture(device).named();
  if (group == nullptr) return mine;
  model::NamedTensors all;
  for (const auto& [name, state] : mine) {
    // Every rank's generators are of the same kinds, so the names line up across ranks.
    const auto gathered =
        group->all_gather(state.unsqueeze(0).to(group->device())).cpu();  // (world, N)
    for (int r = 0; r < group->world_size(); ++r)
      all.emplace_back(rng_prefix(r) + name, gathered[r].clone());
  }
  return all;
}

// Puts this rank's generators back as the checkpoint recorded them. A rank the checkpoint has
// no state for (it was written by fewer ranks) takes rank 0's; a generator it lacks entirely
// (a GPU's, in a checkpoint of a CPU run) keeps its seeded state. Both are said, since the
// dropout masks then differ from the uninterrupted run's.
void restore_rng_states(const model::NamedTensors& states, int rank, const torch::Device& device,
                        const fs::path& dir) {
  auto missing = model::RngState::restore_named(states, rng_prefix(rank), device);
  if (missing.empty()) return;
  if (rank != 0) {
    log::warn(dir.string(), " holds no random state for rank ", rank,
              " (written by a run of fewer ranks?): it continues from rank 0's");
    missing = model::RngState::restore_named(states, "", device);
  }
  for (const auto& name : missing)
    log::warn(
        dir.string(), ": trainer_state/rng.safetensors has no '", name,
        "': that generator keeps its seeded state, so dropout differs from an uninterrupted run");
}

fs::path tokenizer_dir(const config::StageConfig& config) {
  return config.text.tokenizer.empty() ? fs::path(config.model.path) : fs::path(config.text.tokenizer);
}

}  // namespace

Trainer::Trainer(config::StageConfig config) : config_(std::move(config)) {
  const auto& c = config_;
  const auto env = distributed::read_environment();
  if (!env.note.empty()) log::warn(env.note);
  // One GPU per rank, made current before the group or the model does any CUDA work.
  const std::string device_name = distributed::rank_device(c.model.device, env);
  const torch::Device device = model::parse_device(device_name);
  distributed::use_device(device);
  group_ = distributed::init(c.dist, env);  // null for one process
  if (c.train.batch_size <= 0) throw Error("train.batch_size: must be positive");
  if (c.train.grad_accum <= 0) throw Error("train.grad_accum: must be positive");
  torch::manual_seed(static_cast<uint64_t>(c.train.seed));
  precision_ = plan_precision(c.train.precision, c.model.dtype, device);

  tokenizer_ = text::Tokenizer::load(tokenizer_dir(c));
  template_ = std::make_unique<text::EmbeddingTemplate>(*tokenizer_, c.text);
  pad_id_ = data::pad_id_for(tokenizer_->pad_id(), tokenizer_->eos_id());
  const auto* tmpl = template_.get();
  collator_ = std::make_unique<data::Collator>(
      [tmpl](std::string_view t, std::string_view i, int64_t n) { return tmpl->encode(t, i, n); },
      data::collator_options(c.text, pad_id_, c.stage == "contrastive" ? c.objective.contrastive.hard_negatives : 0));
  // The objective comes before any data is read, so that an unavailable stage says so at once.
  objective_ = objective::make_objective(c, tokenizer_->eos_id() ? *tokenizer_->eos_id() : -1,
                                         group_.get());

  datasets_ = data::open_datasets(
      c.data, c.stage == "contrastive" ? c.objective.contrastive.hard_negatives : 0);
  data_files_ = data_fingerprint(c.data);  // recorded in checkpoints, compared on resume
  std::vector<int64_t> sizes;
  for (const auto& d : datasets_) sizes.push_back(d->size());
  data::SamplerOptions sampler;
  sampler.batch_size = c.train.batch_size;
  sampler.seed = static_cast<uint64_t>(c.train.seed);
  sampler.homogeneous = c.data.homogeneous_batches;
  sampler.drop_last = c.data.drop_last;
  if (group_) {
    sampler.world_size = group_->world_size();
    sampler.rank = group_->rank();
  }
  data::check_datasets(datasets_, c.data, sampler.batch_size * sampler.world_size);
  sampler_ = std::make_unique<data::BatchSampler>(sizes, sampler);
  if (sampler_->batches_per_epoch() == 0)
    throw Error("data.train: fewer records than train.batch_size (" + std::to_string(c.train.batch_size) + ")");

  auto model_options = c.model;
  model_options.device = device_name;
  // Full fine-tuning: every weight trains, so the model loads in the trainable dtype (fp32
  // master weights under bf16-mixed, never a bf16 rounding of them); with LoRA the base loads
  // in the frozen dtype.
  model_options.dtype =
      model::dtype_config_name(c.model.use_lora ? precision_.frozen : precision_.trainable);
  model_ = model::load(model_options, c.train.seed);
  for (const auto& p : model_->parameters())
    if (p.requires_grad()) parameters_.push_back(p);
  cast_trainable(parameters_, precision_);  // bf16-mixed: fp32 adapters, before AdamW's moments
  const bool shard = distributed::parse_shard_mode(c.dist.shard) != distributed::ShardMode::kNone;
  if (group_) distributed::broadcast_parameters(*group_, model_->parameters());
  if (group_ && shard) {
    sharded_ = make_sharded_adamw(*group_, model_, c, precision_.trainable,
                                  compute_dtype(precision_, true));
  } else {
    if (shard) log::info("dist.shard '", c.dist.shard, "': one process, nothing to shard");
    optimizer_ = make_adamw(model_, c.optim);
    if (group_)
      sync_ = std::make_unique<distributed::GradientSync>(*group_, parameters_, c.dist.bucket_mb);
  }
}

Trainer::~Trainer() = default;

void Trainer::sum_over_ranks(objective::Sums& sums, int64_t* tokens, int* stop_signal) const {
  if (!group_) return;
  // Every rank's objective reports the same names, so the values line up in one tensor.
  std::vector<double> values;
  for (const auto& [name, value] : sums) values.push_back(value);
  if (tokens != nullptr) values.push_back(static_cast<double>(*tokens));
  if (stop_signal != nullptr) values.push_back(*stop_signal != 0 ? 1.0 : 0.0);
  auto t = torch::tensor(values, torch::kFloat64).to(group_->device());
  group_->all_reduce_mean({t});
  t = t.mul(group_->world_size()).cpu();
  size_t i = 0;
  for (auto& [name, value] : sums) value = t[i++].item<double>();
  if (tokens != nullptr) *tokens = std::llround(t[i++].item<double>());
  // Ranks that received no signal themselves stop too, at the same step.
  if (stop_signal != nullptr && *stop_signal == 0 && t[i].item<double>() > 0) *stop_signal = -1;
}

int64_t Trainer::total_steps() const {
  if (config_.train.max_steps > 0) return config_.train.max_steps;
  return std::max<int64_t>(1, config_.train.epochs * sampler_->batches_per_epoch() / config_.train.grad_accum);
}

data::Batch Trainer::collate(const std::vector<data::PairRecord>& records) const {
  if (config_.stage != "lm") return collator_->collate(records);
  // Causal LM: the texts alone, in Batch::positives.
  std::vector<text::EncodedText> texts;
  for (const auto& r : records) texts.push_back(template_->encode(r.positive, "", config_.text.max_length));
  data::Batch batch;
  batch.positives = data::pad_block(texts, pad_id_, data::parse_padding_side(config_.text.padding_side));
  batch.dataset = records.empty() ? "" : records.front().dataset;
  return batch;
}

std::vector<data::Batch> Trainer::next_micro_batches() {
  std::vector<data::Batch> out;
  for (int64_t k = 0; k < config_.train.grad_accum; ++k) {
    std::vector<data::PairRecord> records;
    for (const auto& ref : sampler_->next()) records.push_back(datasets_[ref.dataset]->read(ref.index));
    out.push_back(collate(records));
  }
  return out;
}

StepResult Trainer::train_step(const std::vector<data::Batch>& micro_batches) {
  const auto start = std::chrono::steady_clock::now();
  model_->train();
  objective::Sums totals;
  for (const auto& batch : micro_batches)
    for (const auto& [name, value] : objective_->count(batch)) totals[name] += value;

  // Data parallel: each rank normalises its loss by the global batch's counts, so that the
  // summed gradient (below) is exactly that of one process holding the whole global batch.
  sum_over_ranks(totals);
  const double world = group_ ? group_->world_size() : 1;

  sharded_ ? sharded_->zero_grad() : optimizer_->zero_grad();
  StepResult result;
  objective::Sums sums;
  objective::TensorSums device_sums;  // read once after the micro-steps (no per-micro-step wait)
  for (size_t m = 0; m < micro_batches.size(); ++m) {
    // GradCache's several backward passes in compute() (one per chunk) are one micro-step to
    // the sync, like checkpointing's recomputations: each parameter is reduced after its last
    // contribution, which falls in the last chunk's pass.
    const bool last = m + 1 == micro_batches.size();
    if (sync_) sync_->set_enabled(last);
    if (sharded_) sharded_->begin_micro_step(last);
    objective::ObjectiveOutput out;
    {
      // bf16-mixed: the forward in bf16 where autocast casts (matmuls), fp32 weights and
      // optimizer state; backward follows the forward's dtypes through autograd.
      compat::AutocastGuard autocast(model_->embed->weight.device(), precision_.autocast);
      out = objective_->compute(model_, micro_batches[m], step_, totals);
    }
    if (!out.backward_done) out.loss.backward();
    if (sharded_) sharded_->end_micro_step(last);
    for (const auto& [name, value] : out.metrics) sums[name] += value;
    objective::add_device_metrics(device_sums, out.device_metrics);
    result.tokens += out.tokens;
  }
  if (sync_) {
    sync_->finish();
    // The all-reduce averages, but each rank's loss is already its share of the global
    // batch's loss: the gradient of one process holding the whole batch is the sum.
    torch::NoGradGuard no_grad;
    for (auto& p : parameters_)
      if (p.grad().defined()) p.grad().mul_(world);
  }
  objective::read_device_metrics(device_sums, sums);
  stop_signal_ = stop_requested();
  sum_over_ranks(sums, &result.tokens, &stop_signal_);
  result.metrics = objective_->finish(sums);
  const double clip = config_.optim.clip_grad_norm;
  result.grad_norm =
      sharded_ ? sharded_->clip_grad_norm(clip)
               : torch::nn::utils::clip_grad_norm_(
                     parameters_, clip > 0 ? clip : std::numeric_limits<double>::infinity());
  result.lr = config_.optim.lr * lr_factor(config_.schedule, step_, total_steps());
  // Every rank holds the same summed loss and the same all-reduced gradients: they all
  // decide alike, with no further collective.
  const double loss = result.metrics.at("loss");
  result.skipped = !std::isfinite(loss) || !std::isfinite(result.grad_norm);
  if (result.skipped) {
    sharded_ ? sharded_->zero_grad() : optimizer_->zero_grad();
    count_skip(!std::isfinite(loss) ? "loss" : "grad_norm", !std::isfinite(loss) ? loss : result.grad_norm);
  } else {
    consecutive_skips_ = 0;
    if (sharded_) {
      sharded_->step(result.lr);
    } else {
      set_lr(*optimizer_, result.lr);
      optimizer_->step();
    }
  }
  ++step_;
  result.step = step_;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void Trainer::count_skip(const std::string& what, double value) {
  ++consecutive_skips_;
  const std::string last = what + "=" + std::to_string(value) + " at step " + std::to_string(step_ + 1);
  log::warn("step ", step_ + 1, ": non-finite ", what, " (", value,
            "): optimizer step skipped, weights unchanged (", consecutive_skips_, " in a row)");
  const int64_t limit = config_.train.max_skipped_steps;
  if (limit > 0 && consecutive_skips_ > limit) {
    const fs::path good = latest_checkpoint(config_.checkpoint.dir);
    throw Error("train: " + std::to_string(consecutive_skips_) + " consecutive non-finite steps (last: " + last +
                "; train.max_skipped_steps is " + std::to_string(limit) + "); last good checkpoint: " +
                (good.empty() ? std::string("none") : good.string()));
  }
}

void Trainer::save_checkpoint(const fs::path& dir,
                              const std::function<void(const fs::path&)>& extra_files) {
  CheckpointContents contents;
  contents.state.step = step_;
  contents.state.sampler = trained_position_ ? *trained_position_ : sampler_->position();
  contents.state.consecutive_skips = consecutive_skips_;
  contents.state.config = config::to_json(config_);
  contents.state.rng = gather_rng_states(group_.get(), model_->parameters().front().device());
  contents.state.data_files = data_files_;
  // Sharded: every rank's slice gathered on rank 0, in the unsharded format (collective).
  contents.optimizer =
      sharded_ ? sharded_->state_tensors() : optimizer_state_tensors(*optimizer_, model_);
  contents.tokenizer_dir = tokenizer_dir(config_);
  // Embedding stages are handed over ready to use (export.h): sentence-transformers files,
  // and with LoRA the weights merged (a CPU copy) plus the adapter, which resume reads back.
  const bool lora = config_.model.use_lora;
  contents.add_files = [&](const fs::path& temp) {
    if (lora) {
      model::AdapterOptions adapter;
      adapter.base_model_name_or_path = fs::absolute(config_.model.path).string();
      model::save_adapter(model_, config_.model.lora, temp / "adapter", adapter);
    }
    if (config_.stage != "lm") write_embedding_files(temp, config_, model_->config.hidden_size);
    if (extra_files) extra_files(temp);
  };
  // Every rank holds the same weights; rank 0 writes, the others wait so that no rank runs
  // ahead (or exits) before the checkpoint is complete. A failed write (disk full) is shared
  // through the wait: every rank stops with the error instead of the others hanging.
  std::string failure;
  auto write = [&] {
    if (!distributed::is_main(group_.get())) return;
    try {
      if (lora) {
        auto merged = merged_copy(model_, config_.model.lora);
        write_checkpoint(dir, merged, contents);
      } else {
        write_checkpoint(dir, model_, contents);
      }
    } catch (const std::exception& e) {
      if (!group_) throw;
      failure = e.what();
    }
  };
  // Sharded bf16-mixed computes with a bf16 copy: the files get the fp32 master weights, as an
  // unsharded run writes them.
  sharded_ ? sharded_->with_master_weights(write) : write();
  if (!group_) return;
  auto failed = torch::tensor({failure.empty() ? 0.0 : 1.0}, torch::kFloat64).to(group_->device());
  group_->all_reduce_mean({failed});  // stands in for the barrier
  if (!failure.empty()) throw Error(failure);
  if (failed.item<double>() > 0)
    throw Error("saving " + dir.string() + " failed on rank 0 (its log says why); the previous checkpoints are intact");
}

void Trainer::resume_from(const fs::path& dir, bool accept_changed) {
  if (!is_complete_checkpoint(dir)) throw Error("--resume: '" + dir.string() + "' is not a complete checkpoint");
  const TrainerState state = read_trainer_state(dir);
  std::vector<std::string> notes;
  const auto changed = run_differences(state.config, state.data_files, config::to_json(config_),
                                       data_files_, &notes);
  for (const auto& note : notes) log::warn("--resume ", dir.string(), ": ", note);
  if (!changed.empty()) {
    if (!accept_changed)
      throw Error(
          "--resume " + dir.string() +
          ": this run differs from the one that wrote the checkpoint:\n  " +
          util::join(changed, "\n  ") +
          "\n(resume the same run, or pass --resume-changed to continue with these changes)");
    for (const auto& line : changed)
      log::warn("--resume-changed: continuing with a changed run: ", line);
  }
  auto load_weights = [&] {
    if (config_.model.use_lora) {
      // The folder's weights are merged; the base (model.path) is unchanged by LoRA training,
      // so only the adapter is read back, into the adapters model::load added.
      const fs::path file = dir / "adapter" / "adapter_model.safetensors";
      const auto adapter = model::read_safetensors(file);
      torch::NoGradGuard no_grad;
      for (auto& item : model_->named_parameters()) {
        if (item.key().find(".lora_") == std::string::npos) continue;
        auto found = adapter.find(model::peft_name(item.key(), "FEATURE_EXTRACTION"));
        if (found == adapter.end())
          throw Error(file.string() + ": adapter tensor for `" + item.key() + "` is missing");
        item.value().copy_(found->second);
      }
    } else {
      torch::NoGradGuard no_grad;
      model::load_hf_weights(model_, dir);
    }
  };
  if (sharded_) {
    // The saved weights become the master shard at full precision (then the compute copy).
    sharded_->reload_master_weights(load_weights);
    sharded_->load_state(read_optimizer_state(dir), dir.string());
  } else {
    load_weights();
    load_optimizer_state(*optimizer_, model_, read_optimizer_state(dir), dir.string());
  }
  sampler_->restore(state.sampler);
  restore_rng_states(state.rng, group_ ? group_->rank() : 0, model_->parameters().front().device(),
                     dir);
  step_ = state.step;
  consecutive_skips_ = state.consecutive_skips;
  log::info("resumed from ", dir.string(), " at step ", step_);
}

bool Trainer::train() {
  const fs::path out_dir = config_.checkpoint.dir;
  const int64_t total = total_steps();
  const int64_t every = config_.checkpoint.every;
  if (step_ >= total) {
    // Resumed from step-<total>/ of a run stopped before final/ was written: write it now
    // (every rank looks before rank 0 may write, so that all take the same branch).
    const bool final_missing = !is_complete_checkpoint(out_dir / "final");
    distributed::barrier(group_.get());
    if (final_missing) {
      save_checkpoint(out_dir / "final");
      if (distributed::is_main(group_.get())) log::info("saved ", (out_dir / "final").string());
      return true;
    }
    log::info("nothing to do: step ", step_, " of ", total, " already reached");
    return true;
  }
  // From here a stop signal asks for a checkpoint; back to "exit at once" when train() returns
  // (after the stop's save, or the final one), or throws.
  struct SaveModeWhileTraining {
    SaveModeWhileTraining() { set_stop_mode(StopMode::kSave); }
    ~SaveModeWhileTraining() { set_stop_mode(StopMode::kExit); }
  } save_mode;
  if (config_.eval.enabled() && !evaluator_)
    throw Error("eval: tasks are listed but no evaluator was set");
  restore_best();
  const bool main = distributed::is_main(group_.get());
  util::MetricsWriter metrics = main ? util::MetricsWriter(out_dir) : util::MetricsWriter();
  util::Progress progress(total, "step");
  const int64_t log_every = std::max<int64_t>(1, config_.train.log_every);
  int64_t tokens_since_log = 0;  // feeds the progress line's tokens/s
  int64_t skipped_since_log = 0;
  // The next step's records are read, tokenised and padded on another thread while this step
  // computes (the data never waits on the device, nor the device on the data). That thread
  // touches only the sampler, datasets and tokenizer, which nothing else uses meanwhile; it is
  // always joined (get(), or the future's destructor) before train() returns.
  struct Prefetched {
    std::vector<data::Batch> batches;
    data::SamplerPosition after;
  };
  auto read_ahead = [this] {
    return std::async(std::launch::async, [this] {
      Prefetched p;
      p.batches = next_micro_batches();
      p.after = sampler_->position();
      return p;
    });
  };
  std::future<Prefetched> next = read_ahead();
  // However train() ends, the read-ahead is joined and the sampler put back where the last
  // trained step left it (a stop drops the batches read ahead; a resume reads them again).
  struct JoinReadAhead {
    std::future<Prefetched>& next;
    Trainer& trainer;
    ~JoinReadAhead() {
      if (next.valid()) next.wait();
      if (!trainer.trained_position_) return;
      try {
        trainer.sampler_->restore(*trainer.trained_position_);
      } catch (const std::exception& e) {
        log::warn("the data sampler could not be put back after training: ", e.what());
      }
      trainer.trained_position_.reset();
    }
  } join{next, *this};
  while (step_ < total) {
    Prefetched current = next.get();
    trained_position_ = current.after;
    if (step_ + 1 < total) next = read_ahead();
    const auto& micro_batches = current.batches;
    const StepResult r = train_step(micro_batches);
    const double tokens_per_s = r.seconds > 0 ? r.tokens / r.seconds : 0.0;
    tokens_since_log += r.tokens;
    skipped_since_log += r.skipped ? 1 : 0;
    if (main && (step_ % log_every == 0 || step_ == total)) {
      nlohmann::json line = {{"step", step_},          {"lr", r.lr},
                             {"grad_norm", r.grad_norm}, {"tokens", r.tokens},
                             {"tokens_per_s", tokens_per_s}, {"skipped_steps", skipped_since_log}};
      for (const auto& [name, value] : r.metrics) line[name] = value;
      metrics.write(line);
      skipped_since_log = 0;
      std::map<std::string, double> shown = {{"loss", r.metrics.at("loss")}, {"lr", r.lr}};
      for (const char* name : {"loss_d2q", "loss_q2d", "accuracy"})
        if (r.metrics.count(name)) shown[name] = r.metrics.at(name);
      progress.update(step_, shown, static_cast<double>(tokens_since_log));
      tokens_since_log = 0;
    }
    const bool periodic = every > 0 && step_ % every == 0;
    // Pre-emption: all ranks agreed on stop_signal_ in train_step, so all save this step.
    const bool stop = stop_signal_ != 0 && step_ < total;
    if (periodic || stop) {
      save_checkpoint(out_dir / ("step-" + std::to_string(step_)));
      if (main) prune_checkpoints(out_dir, config_.checkpoint.keep);
    }
    if (stop) {
      progress.finish();
      log::info("received ",
                stop_signal_ > 0 ? signal_name(stop_signal_) : "a stop signal (on another rank)",
                ": saved ", (out_dir / ("step-" + std::to_string(step_))).string(),
                ", exiting; resume with --resume auto");
      return false;
    }
    if (evaluation_due(total)) evaluate(metrics);
  }
  progress.finish();
  save_checkpoint(out_dir / "final");
  if (main) log::info("saved ", (out_dir / "final").string());
  return true;
}

}  // namespace bireco::train
