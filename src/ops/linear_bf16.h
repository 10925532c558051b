// Projections with bfloat16 weights: y (rows, out) = x (rows, in) * w^T, w stored bf16 as
// (out, in) like the checkpoints, x float32 (rounded to bf16 on the way in), float32
// accumulation and output. Through oneDNN's matmul, which uses AVX512-BF16 (VDPBF16PS) or AMX
// where the CPU has them; on CPUs where oneDNN has no bf16 matmul (AVX2), blocks of w are widened
// to float32 and multiplied by sgemm: the same products, slower. Up to 8 rows (decode) take our
// own kernels instead (ops/simd/skinny_kernels.h: VDPBF16PS, or bf16 widened in registers on
// AVX-512/AVX2/scalar), which stream the weights at memory speed. Halves the weight bytes a
// decode step streams, which is what bounds it at small batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mla::ops {

// Converts float32 weights (out, in) to bf16, round to nearest even.
std::vector<uint16_t> to_bf16(const std::vector<float>& w);

// Thread-safe: each calling thread keeps its own primitives (one per shape) and scratch.
void linear_bf16(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                 float* y);

// The instruction set oneDNN may use here (dnnl_get_effective_cpu_isa: the CPU's, lowered only
// by ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA; nothing in mla caps it), e.g. "avx512_core_bf16", or
// "avx512_core_amx" where its bf16 matmul (the prefill products) runs on AMX tiles.
std::string onednn_cpu_isa();

}  // namespace mla::ops
