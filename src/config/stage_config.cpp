// The schema of a stage config: one line per key, with its meaning. Defaults live in the
// struct initialisers of stage_config.h; configs/README.md is generated from both.
#include "bireco/config/stage_config.h"

namespace bireco::config {
namespace {

void visit_lora(Visitor& v, LoraConfig& c) {
  v.field("r", c.r, {"LoRA rank"});
  v.field("alpha", c.alpha, {"LoRA scaling numerator: the update is (alpha / r) * B A"});
  v.field("dropout", c.dropout, {"dropout on the LoRA input path (training only)"});
  v.field("targets", c.targets,
          {"projections that get adapters: any of q_proj, k_proj, v_proj, o_proj, gate_proj, "
           "up_proj, down_proj"});
}

void visit_model(Visitor& v, ModelConfig& c) {
  v.field("path", c.path,
          {"Hugging Face model directory (config.json + safetensors), a previous stage's "
           "output, or in a pipeline `@stage` / `@stage/step-N`",
           {},
           true});
  v.field("init", c.init,
          {"`pretrained` loads the weights; `random` builds a seeded model from config.json "
           "alone",
           {"pretrained", "random"}});
  v.field("dtype", c.dtype,
          {"dtype the weights that do not train are stored in (the base under LoRA); `auto`: "
           "bfloat16 under train.precision bf16 / bf16-mixed, else float32. Trainable weights "
           "follow train.precision",
           {"auto", "float32", "bfloat16", "float16"}});
  v.field("device", c.device,
          {"`auto` picks CUDA (LOCAL_RANK's GPU) when available, else CPU",
           {"auto", "cpu", "cuda"}});
  v.field("attention", c.attention,
          {"attention pattern (bidirectional as llm2vec offers)", {"causal", "bidirectional"}});
  v.field("pooling", c.pooling,
          {"how a text's embedding is taken from the final hidden states: last token ([EOS]), "
           "mean, or position-weighted mean",
           {"last", "mean", "weighted_mean"}});
  v.field("normalize", c.normalize, {"L2-normalise embeddings"});
  v.field("gradient_checkpointing", c.gradient_checkpointing,
          {"recompute each decoder layer in backward instead of storing its activations"});
  v.field("padding_free", c.padding_free,
          {"run each pass packed: the real tokens of a padded batch end to end, each text "
           "attending to itself (varlen flash attention on CUDA), so no layer computes on "
           "padding; equal to the padded pass but for dropout masks, which are drawn over the "
           "packed tokens"});
  v.optional_section("lora", c.use_lora, "LoRA adapters on the base weights; null trains all "
                     "weights", [&](Visitor& s) { visit_lora(s, c.lora); });
}

void visit_text(Visitor& v, TextConfig& c) {
  v.field("max_length", c.max_length,
          {"maximum tokens per text, template and [EOS] included"});
  v.field("query_max_length", c.query_max_length, {"maximum tokens per query; 0 = max_length"});
  v.field("document_max_length", c.document_max_length,
          {"maximum tokens per document; 0 = max_length"});
  v.field("template", c.template_,
          {"wraps every text; `{text}` is replaced by the (instructed) text. Truncation cuts "
           "the text, never the template"});
  v.field("instruction_format", c.instruction_format,
          {"how a query's instruction joins it; `{instruction}` and `{text}`"});
  v.field("add_bos", c.add_bos, {"put the tokenizer's BOS in front (when it has one)"});
  v.field("add_eos", c.add_eos,
          {"append the tokenizer's EOS after the template (the Llama-3 template already ends in "
           "<|eot_id|>)"});
  v.field("padding_side", c.padding_side,
          {"where batches are padded; positions come from the mask either way",
           {"left", "right"}});
  v.field("tokenizer", c.tokenizer,
          {"tokenizer directory or file; empty = model.path", {}, true});
}

void visit_data(Visitor& v, DataConfig& c) {
  v.field("train", c.train,
          {"training files, folders or globs (a single string is a list of one); a file is a "
           "dataset named by its stem, a folder of .jsonl/.tsv shards one dataset named by the "
           "folder; `*.idx.bin` line-index caches are never data",
           {},
           true});
  v.field("format", c.format,
          {"`e5`: echo/E5 jsonl (query, positive, negative; dataset = file name); `beir`: "
           "folders with corpus.jsonl, queries.jsonl, qrels/; `pairs`: jsonl/tsv with the "
           "field names below; `text`: jsonl {\"text\": ...} lines for `stage: lm`",
           {"e5", "beir", "pairs", "text"}});
  v.field("instructions", c.instructions,
          {"JSON table dataset -> instruction (or a list of two that alternate by record "
           "parity); empty = none",
           {},
           true});
  v.field("instruction_overrides", c.instruction_overrides,
          {"dataset -> instruction, replacing the table's entry"});
  v.field("default_instruction", c.default_instruction,
          {"instruction for datasets without a table entry"});
  v.field("homogeneous_batches", c.homogeneous_batches,
          {"draw every global batch from one dataset (in-batch negatives stay meaningful)"});
  v.field("drop_last", c.drop_last, {"drop each dataset's last incomplete batch (else pad it)"});
  v.field("on_bad_record", c.on_bad_record,
          {"a malformed record stops training with file and line, or is skipped and counted",
           {"error", "skip"}});
  v.field("query_field", c.query_field, {"`pairs` format: the query field"});
  v.field("positive_field", c.positive_field, {"`pairs` format: the positive document field"});
  v.field("negative_field", c.negative_field,
          {"`pairs` format: the hard negative field (string or list; may be absent)"});
  v.field("beir_split", c.beir_split,
          {"`beir` format: the qrels file used, qrels/<split>.tsv (score > 0 is a positive)"});
}

void visit_objective(Visitor& v, ObjectiveConfig& c) {
  v.section("reconstruction", "stage I: EBQ2D / EBD2Q", [&](Visitor& s) {
    auto& r = c.reconstruction;
    s.field("d2q_weight", r.d2q_weight, {"weight of EBD2Q (document embedding -> query)"});
    s.field("q2d_weight", r.q2d_weight, {"weight of EBQ2D (query embedding -> document)"});
    s.field("mode", r.mode,
            {"`sum`: both directions every step; `alternate`: one per optimizer step",
             {"sum", "alternate"}});
    s.field("predict_eos", r.predict_eos, {"make the final [EOS] a reconstruction target"});
    s.field("reference_quirks", r.reference_quirks,
            {"reproduce the authors' code: positions over left padding, BOS/header/instruction "
             "hidden from the reconstruction pass, the loss averaged over micro-batch means "
             "(see 'How the loss is normalised')"});
  });
  v.section("contrastive", "stage II: InfoNCE", [&](Visitor& s) {
    auto& k = c.contrastive;
    s.field("scale", k.scale, {"similarity scale (1 / temperature)"});
    s.field("similarity", k.similarity, {"score function", {"cosine", "dot"}});
    s.field("hard_negatives", k.hard_negatives, {"hard negatives per query"});
    s.field("gather_across_ranks", k.gather_across_ranks,
            {"use every rank's documents as negatives (gradients flow back to their owners)"});
    s.field("symmetric", k.symmetric, {"add the document -> query InfoNCE term"});
    s.field("gradcache_chunk", k.gradcache_chunk,
            {"GradCache sub-batch size; 0 = off (negatives then come from one micro-batch)"});
    s.field("gradcache_recompute", k.gradcache_recompute,
            {"GradCache: checkpoint each chunk's pass with gradients as model.gradient_checkpointing "
             "says (as the Python GradCache does); false keeps one chunk's activations instead and "
             "skips the recomputation (the chunk size already bounds them)"});
  });
  v.field("loss_chunk_tokens", c.loss_chunk_tokens,
          {"positions per LM-head + cross-entropy chunk (the full logits never exist)"});
  v.field("loss_head_gradient", c.loss_head_gradient,
          {"`fused`: the LM head's gradients formed in forward (one head matmul fewer per chunk; "
           "a [vocab, hidden] gradient is held until backward); `recompute`: logits recomputed "
           "in backward (no such buffer, for memory-tight runs)",
           {"fused", "recompute"}});
}

void visit_optim(Visitor& v, OptimConfig& c) {
  v.field("name", c.name, {"optimizer", {"adamw"}});
  v.field("lr", c.lr, {"peak learning rate"});
  v.field("weight_decay", c.weight_decay, {"decoupled weight decay (never on norms or biases)"});
  v.field("betas", c.betas, {"Adam betas [beta1, beta2]"});
  v.field("eps", c.eps, {"Adam epsilon"});
  v.field("clip_grad_norm", c.clip_grad_norm, {"clip by global gradient norm; 0 = off"});
}

void visit_schedule(Visitor& v, ScheduleConfig& c) {
  v.field("name", c.name, {"learning-rate schedule after warmup",
                           {"constant", "linear", "cosine"}});
  v.field("warmup_steps", c.warmup_steps, {"linear warmup from 0 over this many steps"});
  v.field("min_lr_ratio", c.min_lr_ratio, {"final lr as a fraction of lr (linear, cosine)"});
}

void visit_train(Visitor& v, TrainConfig& c) {
  v.field("batch_size", c.batch_size, {"examples per micro-batch per rank"});
  v.field("grad_accum", c.grad_accum, {"micro-batches per optimizer step"});
  v.field("max_steps", c.max_steps, {"optimizer steps; 0 = run `epochs` epochs"});
  v.field("epochs", c.epochs, {"passes over the data when max_steps is 0"});
  v.field("seed", c.seed, {"seeds initialisation, shuffling and dropout"});
  v.field("precision", c.precision,
          {"`auto`: bf16-mixed on GPU and on CPUs with native bf16 matmuls (AMX / AVX512-BF16), "
           "else fp32; `bf16`: every weight and the optimizer state "
           "in bf16, as the authors ran stage I; `bf16-mixed`: bf16 autocast compute, trainable "
           "weights and optimizer state fp32, frozen weights in model.dtype (PEFT + HF Trainer's "
           "way)",
           {"auto", "fp32", "bf16", "bf16-mixed"}});
  v.field("log_every", c.log_every, {"log and append metrics every N optimizer steps"});
  v.field("log_level", c.log_level,
          {"log verbosity", {"trace", "debug", "info", "warn", "error", "off"}});
  v.field("max_skipped_steps", c.max_skipped_steps,
          {"steps with a non-finite loss or gradient norm are skipped; more than this many in a "
           "row stop the run with an error; 0 = no limit"});
}

void visit_checkpoint(Visitor& v, CheckpointConfig& c) {
  v.field("dir", c.dir,
          {"output folder: step-N/, final/, metrics.jsonl, resolved_config.json", {}, true});
  v.field("every", c.every, {"save every N optimizer steps; 0 = only at the end"});
  v.field("keep", c.keep, {"newest step-N checkpoints kept; 0 = all"});
}

void visit_dist(Visitor& v, DistConfig& c) {
  v.field("backend", c.backend, {"`auto`: NCCL with CUDA, Gloo on CPU", {"auto", "nccl", "gloo"}});
  v.field("timeout_s", c.timeout_s, {"collective and rendezvous timeout in seconds"});
  v.field("bucket_mb", c.bucket_mb, {"gradient all-reduce bucket size in MiB"});
  v.field("shard", c.shard,
          {"`optimizer` (ZeRO-1): each rank keeps 1/world of the master weights and AdamW "
           "moments; `gradients` (ZeRO-2): also 1/world of the gradients, reduce-scattered every "
           "micro-step; bf16-mixed then computes with a bf16 copy of the trainable weights. "
           "`bireco info --set dist.shard=... --world-size N` prints the memory per rank",
           {"none", "optimizer", "gradients"}});
}

void visit_eval(Visitor& v, EvalConfig& c) {
  v.field("every", c.every,
          {"evaluate every N optimizer steps (and always at the end, when a task is listed); "
           "0 = only at the end"});
  v.field("retrieval", c.retrieval,
          {"BEIR folders (corpus.jsonl, queries.jsonl, qrels/) scored as `bireco eval --task "
           "retrieval`; a task is named by its folder's name",
           {},
           true});
  v.field("reranking", c.reranking,
          {"candidate lists (.jsonl) scored as `bireco eval --task reranking`; named by the "
           "file name without extension",
           {},
           true});
  v.field("sts", c.sts,
          {"scored pairs (.tsv / .jsonl) as `bireco eval --task sts`; named by the file name "
           "without extension",
           {},
           true});
  v.field("split", c.split, {"retrieval: the qrels file used, qrels/<split>.tsv"});
  v.field("instruction", c.instruction,
          {"instruction for every task's queries (STS: both sentences); empty = none"});
  v.field("instructions", c.instructions,
          {"task name -> instruction, replacing `instruction` for that task"});
  v.field("max_queries", c.max_queries,
          {"retrieval, reranking: score the first N queries; STS: the first N pairs; 0 = all "
           "(`bireco eval --max-queries`)"});
  v.field("max_corpus", c.max_corpus,
          {"retrieval: keep every document judged for the kept queries, then the corpus's "
           "first others, up to N documents; 0 = all (`bireco eval --max-corpus`)"});
  v.field("batch_tokens", c.batch_tokens,
          {"padded tokens per encoder batch (`bireco eval --batch-tokens`)"});
  v.field("metric_for_best", c.metric_for_best,
          {"`<task>/<metric>` (e.g. `scifact/ndcg_at_10`, as logged after `eval/`): the "
           "checkpoint scoring highest is kept in best/ (never pruned); empty = none"});
  v.field("timeout_s", c.timeout_s,
          {"how long the other ranks wait for rank 0's evaluation (it is not bound by "
           "dist.timeout_s)"});
}

}  // namespace

void visit(Visitor& v, StageConfig& c) {
  v.field("stage", c.stage,
          {"what this stage trains: stage I, stage II, or plain causal-LM pre-training",
           {"reconstruction", "contrastive", "lm"}});
  v.section("model", "the model being trained", [&](Visitor& s) { visit_model(s, c.model); });
  v.section("text", "how texts become tokens", [&](Visitor& s) { visit_text(s, c.text); });
  v.section("data", "training data", [&](Visitor& s) { visit_data(s, c.data); });
  v.section("objective", "losses", [&](Visitor& s) { visit_objective(s, c.objective); });
  v.section("optim", "optimizer", [&](Visitor& s) { visit_optim(s, c.optim); });
  v.section("schedule", "learning-rate schedule",
            [&](Visitor& s) { visit_schedule(s, c.schedule); });
  v.section("train", "the training loop", [&](Visitor& s) { visit_train(s, c.train); });
  v.section("checkpoint", "outputs", [&](Visitor& s) { visit_checkpoint(s, c.checkpoint); });
  v.section("dist", "data parallelism", [&](Visitor& s) { visit_dist(s, c.dist); });
  v.section("eval", "evaluation during training: scores logged to metrics.jsonl, best checkpoint",
            [&](Visitor& s) { visit_eval(s, c.eval); });
}

}  // namespace bireco::config
