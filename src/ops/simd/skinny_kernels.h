// The per-instruction-set half of the skinny paths of linear_bf16 and linear (ops/linear_bf16.h,
// ops/gemm.h): a few rows of activations against weights (bf16 or float32) stored (out, in), each
// output a dot product along a weight row. With few rows the weights are read once from memory and
// used `rows` times, so the cost is the weight bytes: a general GEMM library gains nothing from
// blocking here, and oneDNN's sgemm and bf16 matmul, built for large products, ran at a fraction of
// the memory bandwidth (docs/performance.md).
//
// As in latent_kernels.h, an ISA file must not instantiate or odr-use inline functions or
// templates shared with other files.
#pragma once

#include <cstdint>

namespace mla::ops::simd {

// Most rows the skinny path takes; larger products go to oneDNN.
inline constexpr int64_t kSkinnyMaxRows = 8;

// y[r * out + o] = sum_k x[r][k] * w[o][k] for o in [o0, o1), rows <= kSkinnyMaxRows.
// VDPBF16PS form: x already rounded to bf16, rows of `in` bf16.
void skinny_bf16_dot_avx512bf16(const uint16_t* x, int64_t rows, int64_t in, const uint16_t* w,
                                int64_t o0, int64_t o1, float* y, int64_t out);
// AMX-BF16 form (skinny_amx.cc; only where cpu_features().amx_usable): x_pairs is x (rows of
// `in` bf16) as pack_amx_pairs lays it out, the tiles' B operand.
void skinny_bf16_amx(const uint16_t* x_pairs, int64_t rows, int64_t in, const uint16_t* w,
                     int64_t o0, int64_t o1, float* y, int64_t out);
// The same kernel on the software model of the tiles (amx_tile_model.h): any CPU, tests only.
void skinny_bf16_amx_model(const uint16_t* x_pairs, int64_t rows, int64_t in, const uint16_t* w,
                           int64_t o0, int64_t o1, float* y, int64_t out);
// x (rows, in) bf16 -> pairs[(p * rows + r) * 2 + j] = x[r][2p + j], zero past `in`, for p up to
// `in` rounded up to 32, over 2: amx_pairs_size(rows, in) numbers.
int64_t amx_pairs_size(int64_t rows, int64_t in);
void pack_amx_pairs(const uint16_t* x, int64_t rows, int64_t in, uint16_t* pairs);
// Widening form (the same products: x holds float32 values already rounded to bf16, w is
// widened in registers; float32 FMA).
void skinny_bf16_widen_avx512(const float* x, int64_t rows, int64_t in, const uint16_t* w,
                              int64_t o0, int64_t o1, float* y, int64_t out);
void skinny_bf16_widen_avx2(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t o0,
                            int64_t o1, float* y, int64_t out);
void skinny_bf16_widen_scalar(const float* x, int64_t rows, int64_t in, const uint16_t* w,
                              int64_t o0, int64_t o1, float* y, int64_t out);
// Float32 weights (ops::linear with few rows).
void skinny_f32_avx512(const float* x, int64_t rows, int64_t in, const float* w, int64_t o0,
                       int64_t o1, float* y, int64_t out);
void skinny_f32_avx2(const float* x, int64_t rows, int64_t in, const float* w, int64_t o0,
                     int64_t o1, float* y, int64_t out);
void skinny_f32_scalar(const float* x, int64_t rows, int64_t in, const float* w, int64_t o0,
                       int64_t o1, float* y, int64_t out);

}  // namespace mla::ops::simd
