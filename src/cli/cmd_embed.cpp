// `bireco embed`: embed texts with a trained model
#include <filesystem>
#include <iostream>

#include "bireco/cli/command.h"
#include "bireco/eval/datasets.h"
#include "bireco/eval/embedding_io.h"
#include "bireco/eval/encoder.h"
#include "bireco/util/error.h"

namespace bireco::cli {

Command add_embed(CLI::App& app) {
  struct Options {
    std::string model, input, instruction, out, device = "auto", dtype = "auto";
    bool padded = false;
    int64_t batch_tokens = 16384;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("embed", "embed texts with a trained model");
  sub->add_option("--model", o->model, "model directory (settings from its bireco_embedding.json, if any)")->required();
  sub->add_option("--input", o->input, "texts.jsonl ({\"text\": ..., \"id\"?: ...} per line) or .txt")->required();
  sub->add_option("--instruction", o->instruction, "instruction joined to every text");
  sub->add_option("--out", o->out, "emb.npy (+ emb.ids.txt) or emb.safetensors (ids in __metadata__)")->required();
  sub->add_option("--batch-tokens", o->batch_tokens, "padded tokens per batch")->capture_default_str();
  sub->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "float32, bfloat16, float16, or auto: bfloat16 on CUDA and on CPUs with native bf16 (AMX / AVX512-BF16), else float32")
      ->capture_default_str();
  sub->add_flag("--padded", o->padded,
                "run padded batches as transformers / sentence-transformers do (default: padding-free, "
                "equal to fp32 rounding); for comparisons that hinge on exact ties");
  return {sub, [o]() -> int {
            if (o->batch_tokens <= 0) throw Error("--batch-tokens must be positive");
            const auto ext = std::filesystem::path(o->out).extension();
            if (ext != ".npy" && ext != ".safetensors")
              throw Error("--out: '" + o->out + "' must end in .npy or .safetensors");
            const eval::Texts texts = eval::read_texts(o->input);
            auto settings = eval::EncoderSettings::from_model_dir(o->model);
            settings.batch_tokens = o->batch_tokens;
            settings.dtype = o->dtype;
            settings.padding_free = !o->padded;
            auto encoder = eval::Encoder::load(o->model, o->device, settings);
            const torch::Tensor embeddings = encoder.encode(texts.texts, o->instruction);
            eval::write_embeddings(o->out, embeddings, texts.ids);
            std::cout << "wrote " << o->out << ": " << embeddings.size(0) << " x " << embeddings.size(1)
                      << " float32\n";
            return kExitOk;
          }};
}

}  // namespace bireco::cli
