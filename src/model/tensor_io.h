// What every layer kind's weights share (MlaWeights, DsaWeights): the size check of a tensor and
// the one checkpoint tensor loader, FP8 included. Defined in weights.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mla {

class CheckpointDir;

int64_t numel(const std::vector<int64_t>& shape);

// Throws "weights: <name>: expected N values for shape [..], got M", or
// "weights: <name>: value I is NaN or infinity".
void check_tensor(const std::string& name, const std::vector<int64_t>& shape,
                  const std::vector<float>& data);

// Reads tensor `name` as float32: F32, BF16, F16, or FP8 e4m3 with its "<name>_scale_inv" 128x128
// block scales (DeepSeek-V3's layout). Checks the shape and that every value is finite; errors name
// the tensor and the file. A missing tensor throws "<dir>: missing tensor '<name>' <why_needed>".
std::vector<float> load_checkpoint_tensor(const CheckpointDir& checkpoint, const std::string& name,
                                          const std::vector<int64_t>& shape,
                                          const std::string& why_needed);

}  // namespace mla
