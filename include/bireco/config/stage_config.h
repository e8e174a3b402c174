// The typed stage config: every key of ../shared/DESIGN.md's schema with its default.
// configs/README.md is generated from the visit functions in stage_config.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bireco/config/schema.h"

namespace bireco::config {

struct LoraConfig {
  int64_t r = 16;
  double alpha = 32;
  double dropout = 0.05;
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                      "gate_proj", "up_proj", "down_proj"};
};

struct ModelConfig {
  std::string path;
  std::string init = "pretrained";
  std::string dtype = "auto";
  std::string device = "auto";
  std::string attention = "causal";
  std::string pooling = "last";
  bool normalize = false;
  bool gradient_checkpointing = false;
  bool padding_free = true;
  bool use_lora = false;  // `lora: null` when false
  LoraConfig lora;
};

struct TextConfig {
  int64_t max_length = 512;
  int64_t query_max_length = 0;     // 0: max_length
  int64_t document_max_length = 0;  // 0: max_length
  std::string template_ = "<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>";
  std::string instruction_format = "{instruction}; {text}";
  bool add_bos = true;
  bool add_eos = false;
  std::string padding_side = "left";
  std::string tokenizer;  // empty: the model directory
};

struct DataConfig {
  std::vector<std::string> train;
  std::string format = "e5";
  std::string instructions;
  std::map<std::string, std::string> instruction_overrides;
  std::string default_instruction;
  bool homogeneous_batches = true;
  bool drop_last = true;
  std::string on_bad_record = "error";
  std::string query_field = "query";
  std::string positive_field = "positive";
  std::string negative_field = "negative";
  std::string beir_split = "train";
};

struct ReconstructionConfig {
  double d2q_weight = 0.8;
  double q2d_weight = 0.2;
  std::string mode = "sum";
  bool predict_eos = false;
  bool reference_quirks = false;
};

struct ContrastiveConfig {
  double scale = 50;
  std::string similarity = "cosine";
  int64_t hard_negatives = 1;
  bool gather_across_ranks = true;
  bool symmetric = false;
  int64_t gradcache_chunk = 0;
  bool gradcache_recompute = true;
};

struct ObjectiveConfig {
  ReconstructionConfig reconstruction;
  ContrastiveConfig contrastive;
  int64_t loss_chunk_tokens = 4096;
  std::string loss_head_gradient = "fused";
};

struct OptimConfig {
  std::string name = "adamw";
  double lr = 4.0e-5;
  double weight_decay = 0.0;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1.0e-8;
  double clip_grad_norm = 1.0;
};

struct ScheduleConfig {
  std::string name = "linear";
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;
};

struct TrainConfig {
  int64_t batch_size = 32;
  int64_t grad_accum = 1;
  int64_t max_steps = 0;
  int64_t epochs = 1;
  int64_t seed = 42;
  std::string precision = "auto";
  int64_t log_every = 1;
  std::string log_level = "info";
  int64_t max_skipped_steps = 10;
};

struct CheckpointConfig {
  std::string dir = "output/run";
  int64_t every = 0;
  int64_t keep = 3;
};

struct DistConfig {
  std::string backend = "auto";
  double timeout_s = 600;
  double bucket_mb = 25;
  // none | optimizer (ZeRO-1) | gradients (ZeRO-2): distributed/sharded_optimizer.h.
  std::string shard = "none";
};

// Evaluation during training (train/evaluation.h): on when any task is listed.
struct EvalConfig {
  int64_t every = 0;                   // 0: only at the end
  std::vector<std::string> retrieval;  // BEIR folders
  std::vector<std::string> reranking;  // candidate-list .jsonl files
  std::vector<std::string> sts;        // pair files (.tsv / .jsonl)
  std::string split = "test";
  std::string instruction;
  std::map<std::string, std::string> instructions;  // task name -> instruction
  int64_t max_queries = 0;                          // 0: all
  int64_t max_corpus = 0;                           // 0: all
  int64_t batch_tokens = 16384;
  std::string metric_for_best;  // empty: no best/
  double timeout_s = 86400;

  bool enabled() const { return !retrieval.empty() || !reranking.empty() || !sts.empty(); }
};

struct StageConfig {
  std::string stage = "reconstruction";
  ModelConfig model;
  TextConfig text;
  DataConfig data;
  ObjectiveConfig objective;
  OptimConfig optim;
  ScheduleConfig schedule;
  TrainConfig train;
  CheckpointConfig checkpoint;
  DistConfig dist;
  EvalConfig eval;
};

// The schema, section by section (stage_config.cpp documents every key).
void visit(Visitor& v, StageConfig& c);

}  // namespace bireco::config
