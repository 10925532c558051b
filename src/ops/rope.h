// Rotary position embedding. DeepSeek's interleaved convention rotates the pair (x[2k], x[2k+1])
// by angle pos * f_k; the rotate-half (GPT-NeoX) convention, which DeepSeek-V3.2's lightning
// indexer uses, rotates (x[k], x[k + d_r/2]) by the same angle. f_k are YaRN-corrected when
// YaRN is on. The rotation is the one inference and training share: templates on the element
// type (float; double for the gradient checks) with the transpose rotation for backward.
// Nothing here knows a model config: the model turns its config into RopeParams
// (src/model/rope_params.h).
#pragma once

#include <cstdint>
#include <vector>

namespace mla::ops {

// The rotary numbers of a model: width, base and YaRN's correction (off unless `yarn`).
struct RopeParams {
  int64_t dim = 0;  // d_r, even
  double theta = 10000.0;
  bool yarn = false;
  double factor = 1.0;
  int64_t original_context = 4096;  // original_max_position_embeddings
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

// f_k for k = 0 .. d_r/2 - 1, YaRN-corrected when p.yarn.
std::vector<float> rope_frequencies(const RopeParams& p);

// Hugging Face's cos/sin multiplier yarn_mscale(factor, mscale) / yarn_mscale(factor,
// mscale_all_dim); 1 for every released DeepSeek model and when YaRN is off.
float rope_amplitude(const RopeParams& p);

// cos/sin of pos * f_k (times amplitude) for one position: cos_sin has d_r entries
// (cos_0, sin_0, cos_1, sin_1, ...).
void rope_cos_sin(const std::vector<float>& freqs, float amplitude, int64_t pos, float* cos_sin);

// (count, d_r) cos/sin rows of positions 0 .. count - 1: the table of a batch of sequences
// that start at position 0 (training).
std::vector<float> rope_table(const RopeParams& p, int64_t count);

// The transpose rotation (angle -pos f_k, same amplitude) turns the gradient with respect to a
// rotated vector into the gradient with respect to the vector before rotation.
enum class RopeDirection { kForward, kTranspose };

// Rotates `count` vectors of width d_r in place; vector i starts at x + i * stride.
template <typename T>
void rope_apply(T* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin,
                RopeDirection direction = RopeDirection::kForward);

// The rotate-half convention with the same angles.
template <typename T>
void rope_apply_half(T* x, int64_t count, int64_t stride, int64_t d_r, const float* cos_sin,
                     RopeDirection direction = RopeDirection::kForward);

// Rows of heads: for every row i < rows, the `vectors` vectors at x + i * row_stride + v *
// vector_stride are rotated with cos/sin row (i % period) of `table` ((period, d_r), as
// rope_cos_sin writes rows). Inference passes one table row per new token (period = rows),
// training the rows of positions 0 .. S-1 of a batch of S-token sequences (period = S).
// Parallel over rows for large calls.
template <typename T>
void rope_apply_rows(T* x, int64_t rows, int64_t row_stride, int64_t vectors, int64_t vector_stride,
                     int64_t d_r, const float* table, int64_t period,
                     RopeDirection direction = RopeDirection::kForward);

}  // namespace mla::ops
