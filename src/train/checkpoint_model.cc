// A trained model from its checkpoint (for generation): kept apart from the checkpoint reader so
// that the reader builds without the model (fuzz/fuzz_checkpoint.cc compiles it alone).
#include <algorithm>

#include "mla/train_checkpoint.h"

namespace mla {

LmModel load_model_checkpoint(const std::string& path) {
  OpenedCheckpoint ckpt = open_checkpoint(resolve_checkpoint(path));
  LmModel model(ckpt.config);
  for (const ParamTensor& t : model.tensors()) {
    const std::vector<float> values = read_checkpoint_tensor(ckpt.file, t.name, t.shape);
    std::copy(values.begin(), values.end(), model.params().begin() + t.offset);
  }
  return model;
}

}  // namespace mla
