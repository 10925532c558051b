// Any bytes as a training checkpoint (what `mla train --resume` and `mla generate` read): the
// reader either throws mla::Error or yields a config, parameter and optimizer tensors of the
// shapes that config implies, all finite, and run state (options, step, generator, history).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_file.h"
#include "mla/error.h"
#include "mla/train.h"
#include "mla/train_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz_write_file("step_00000001.safetensors", data, size);
  try {
    const mla::OpenedCheckpoint ckpt = mla::open_checkpoint(path);
    const std::vector<mla::ParamTensor> params = mla::lm_parameter_list(ckpt.config);
    int64_t total = 0;
    for (const mla::ParamTensor& t : params) total += t.numel;
    // Bounded work per input: a config may describe a huge model whose tensors are not there;
    // the first missing or ill-shaped one throws, so only read when the total is small.
    if (total <= (int64_t{1} << 20)) {
      for (const mla::ParamTensor& t : params) {
        for (float v : mla::read_checkpoint_tensor(ckpt.file, t.name, t.shape))
          if (!std::isfinite(v)) std::abort();
      }
      (void)mla::read_checkpoint_tensor(ckpt.file, "optimizer.exp_avg", {total});
      (void)mla::read_checkpoint_tensor(ckpt.file, "optimizer.exp_avg_sq", {total});
    }
    const mla::CheckpointRunState state = mla::read_checkpoint_run_state(ckpt.file);
    state.options.validate();
  } catch (const mla::Error&) {
  }
  return 0;
}
