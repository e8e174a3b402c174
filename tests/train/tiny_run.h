// The tiny stage-I run the trainer tests share: the demo's tiny Llama (random init) on the
// bundled SciFact pairs, short texts, 4 steps of batch 4 on CPU in fp32, checkpoints only at
// the end. Tests change what they examine on top of it.
#pragma once

#include <filesystem>

#include "bireco/config/stage_config.h"
#include "test_support.h"

namespace bireco::test {

inline config::StageConfig tiny_run_config(const std::filesystem::path& out) {
  config::StageConfig c;
  c.stage = "reconstruction";
  c.model.path = (source_dir() / "configs/demo/tiny-llama").string();
  c.model.init = "random";
  c.model.device = "cpu";
  c.text.max_length = 24;
  c.text.template_ = "{text}";
  c.text.add_eos = true;
  c.data.train = {(source_dir() / "data/demo/train/scifact.jsonl").string()};
  c.data.default_instruction = "Retrieve";
  c.optim.lr = 1e-3;
  c.optim.weight_decay = 0.01;
  c.schedule.warmup_steps = 1;
  c.train.batch_size = 4;
  c.train.max_steps = 4;
  c.train.seed = 3;
  c.train.precision = "fp32";
  c.checkpoint.dir = out.string();
  c.checkpoint.every = 0;
  c.checkpoint.keep = 0;
  return c;
}

}  // namespace bireco::test
