// The pieces of a whole DeepSeek model (mla/model.h): weight matrices in float32 or bf16 (bf16
// possibly in place in a checkpoint's mapping), the SwiGLU MLP and the DeepSeekMoE block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mla/dtype.h"
#include "mla/model.h"
#include "mla/safetensors.h"
#include "ops/cache_line_vector.h"

namespace mla::detail {

// A weight [out, in] for y = x W^T, float32 (owned) or bf16 (owned, or a view into the mapping
// of a checkpoint that outlives it).
// int8: symmetric per-row scales, w[o][i] = q[o][i] * scale[o] (quantized at load).
// fp8: e4m3 codes in place in the mapping, w[o][i] = e4m3(fp8[o][i]) * block[o / 128][i / 128]
// (the release's weight_scale_inv, `block_cols` = ceil(in / 128) per block row).
struct Matrix {
  int64_t out = 0, in = 0;
  std::vector<float> f32;
  std::vector<uint16_t> bf16_owned;
  const uint16_t* bf16 = nullptr;
  std::vector<int8_t> q;
  std::vector<float> scale;
  const uint8_t* fp8 = nullptr;
  std::vector<float> block_scale;
  int64_t block_cols = 0;

  bool empty() const { return out == 0; }
  bool is_fp8() const { return fp8 != nullptr; }
  bool is_bf16() const { return bf16 != nullptr; }
  bool is_int8() const { return !q.empty(); }
  int64_t bytes() const {
    if (is_fp8()) return out * in + static_cast<int64_t>(block_scale.size()) * 4;
    return is_int8() ? out * in + out * 4 : out * in * (is_bf16() ? 2 : 4);
  }
  // Replaces the weights by int8 with per-row scales (from whichever form they are in).
  void quantize_int8();
  void apply(const float* x, int64_t rows, float* y) const;  // y (rows, out)
  void copy_row(int64_t r, float* dst) const;                // row r as float32
};

// Reads tensor `name` of shape [out, in] as `compute` (F32 or BF16). A BF16 tensor read as BF16
// stays in the mapping; FP8 e4m3 read as BF16 stays in the mapping too, with its 128x128
// `<base>_scale_inv` blocks (read as F32 it is multiplied out at load). Errors:
// "<dir>: missing tensor '<name>'", "<file>: tensor '<name>': expected shape [..], got [..]",
// "... value I is NaN or infinity".
Matrix load_matrix(const CheckpointDir& ck, const std::string& name, int64_t out, int64_t in,
                   DType compute);
// A vector of `size` float32 values (norm gains, the router bias).
std::vector<float> load_vector(const CheckpointDir& ck, const std::string& name, int64_t size);
// Uniform random weights with variance 1/in (fast: benchmarks fill billions of them).
Matrix random_matrix(int64_t out, int64_t in, DType compute, uint64_t seed);
std::vector<float> random_vector(int64_t size, float lo, float hi, uint64_t seed);

// y (rows, out) = x (rows, in) W^T for one-byte weights (int8 with per-row scales, or FP8 e4m3
// with 128x128 block scales, kept as stored): up to 8 rows stream the weights once; more rows
// widen blocks of weight rows to float32 and multiply them with sgemm. Equals the float32
// product of the dequantized weights up to summation order.
void linear_one_byte(const float* x, int64_t rows, const Matrix& w, float* y);
// Row o of an int8 or FP8 matrix as float32.
void one_byte_row(const Matrix& w, int64_t o, float* dst);

struct SwiGlu {
  Matrix gate, up, down;  // [m, d], [m, d], [d, m]
  int64_t width() const { return gate.out; }
  int64_t bytes() const { return gate.bytes() + up.bytes() + down.bytes(); }
};
// "<prefix>gate_proj.weight", ... with hidden d and width m.
SwiGlu load_swiglu(const CheckpointDir& ck, const std::string& prefix, int64_t d, int64_t m,
                   DType compute);
SwiGlu random_swiglu(int64_t d, int64_t m, DType compute, uint64_t seed);
// y (n, d) = down(silu(gate x) * up x); hidden holds 2 n m floats.
void swiglu_forward(const SwiGlu& w, const float* x, int64_t n, float* hidden, float* y);

struct MoeWeights {
  Matrix gate;              // [E, d], applied in float32 as the official code's router
  std::vector<float> bias;  // [E] e_score_correction_bias (noaux_tc) or empty
  std::vector<SwiGlu> experts;
  SwiGlu shared;  // empty when n_shared_experts == 0
  int64_t bytes() const;
};

// Grow-only buffers of one MoE call: a warm decode step allocates nothing.
struct MoeScratch {
  std::vector<float> logits, weights, router;
  // Inputs of the expert products: on cache lines, so the skinny kernels need not copy them.
  ops::CacheLineVector<float> gathered, hidden, out;
  std::vector<int32_t> experts, counts, offsets, rows;
  void reserve(int64_t n, int64_t d, const RouterConfig& r, int64_t m, int64_t shared_width);
};

// y (n, d) = sum over the chosen experts of w_e Expert_e(x) + Shared(x). Tokens are grouped by
// expert, so each chosen expert's weights are read once for all the tokens routed to it and a
// prefill multiplies each expert's tokens as one GEMM.
void moe_forward(const RouterConfig& cfg, const MoeWeights& w, const float* x, int64_t n, int64_t d,
                 MoeScratch& s, float* y);

}  // namespace mla::detail
