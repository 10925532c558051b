#include "ops/skinny.h"

#include <algorithm>
#include <cstdint>

#include "ops/cache_line_vector.h"
#include "ops/cpu_features.h"
#include "ops/kernel_choice.h"
#include "ops/parallel.h"

namespace mla::ops {
namespace {

// Outputs per block: small enough to balance two threads on the narrowest projection (576
// outputs), large enough that each thread streams long contiguous runs of weight rows.
constexpr int64_t kChunk = 32;

// The AMX kernel takes 48 outputs a pass (three 16-row tiles share each tile of x).
constexpr int64_t kAmxChunk = 48;

// Tests only: the AMX route through the software tile model.
bool g_amx_model = false;

template <class Kernel>
void over_output_blocks(int64_t in, int64_t out, const Kernel& kernel, int64_t chunk = kChunk) {
  const int64_t chunks = (out + chunk - 1) / chunk;
  // Tiny products are not worth a fork. Blocks are handed out one at a time: when another
  // process takes half of one core, the thread on the free core does more of them instead of
  // waiting at the join for the slowed one (a static split made such a step 2x slower).
#pragma omp parallel for schedule(dynamic, 1) if (worth_parallel(static_cast <double>(out) * in))
  for (int64_t c = 0; c < chunks; ++c) kernel(c * chunk, std::min(out, (c + 1) * chunk));
}

// Each x row is loaded once per block of outputs (weights once in all): when x does not start on
// a 64-byte boundary every vector load of it spans two cache lines, measured 1.4x (weights from
// memory) to 1.8x (from cache) slower at 8 rows on Zen 5. Misaligned rows are copied to an
// aligned per-thread buffer (rows x in numbers: small beside the weights). Rows after the first
// stay aligned when in is a multiple of the 64-byte vector, as in every DeepSeek shape.
template <class T>
const T* aligned_rows(const T* x, int64_t rows, int64_t in) {
  if (reinterpret_cast<uintptr_t>(x) % kCacheLine == 0) return x;
  thread_local CacheLineVector<T> buffer;
  buffer.assign(x, x + rows * in);  // grows once per thread; a warm step allocates nothing
  return buffer.data();
}

SimdLevel skinny_bf16_level() {
  return g_amx_model ? SimdLevel::kAmx : kernel_level(KernelFamily::kSkinnyBf16);
}

// x packed once per product into the tiles' pair layout, then the outputs split as usual.
void skinny_bf16_amx_route(const uint16_t* x_bf16, int64_t rows, int64_t in, const uint16_t* w,
                           int64_t out, float* y) {
  thread_local CacheLineVector<uint16_t> pairs;
  pairs.resize(static_cast<size_t>(simd::amx_pairs_size(rows, in)));
  simd::pack_amx_pairs(x_bf16, rows, in, pairs.data());
  const auto kernel = g_amx_model ? simd::skinny_bf16_amx_model : simd::skinny_bf16_amx;
  const uint16_t* packed = pairs.data();
  over_output_blocks(
      in, out, [&](int64_t o0, int64_t o1) { kernel(packed, rows, in, w, o0, o1, y, out); },
      kAmxChunk);
}

}  // namespace

void route_skinny_bf16_through_amx_model(bool on) {
  g_amx_model = on;
}

bool skinny_bf16_widens() {
  return skinny_bf16_level() < SimdLevel::kAvx512Bf16;
}

void skinny_linear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out,
                   float* y) {
  const SimdLevel level = kernel_level(KernelFamily::kSkinnyF32);
  x = aligned_rows(x, rows, in);
  over_output_blocks(in, out, [&](int64_t o0, int64_t o1) {
    if (level >= SimdLevel::kAvx512) {
      simd::skinny_f32_avx512(x, rows, in, w, o0, o1, y, out);
    } else if (level == SimdLevel::kAvx2) {
      simd::skinny_f32_avx2(x, rows, in, w, o0, o1, y, out);
    } else {
      simd::skinny_f32_scalar(x, rows, in, w, o0, o1, y, out);
    }
  });
}

void skinny_linear_bf16(const uint16_t* x_bf16, const float* x_rounded, int64_t rows, int64_t in,
                        const uint16_t* w, int64_t out, float* y) {
  const SimdLevel level = skinny_bf16_level();
  if (level == SimdLevel::kAmx) return skinny_bf16_amx_route(x_bf16, rows, in, w, out, y);
  if (level == SimdLevel::kAvx512Bf16) {
    x_bf16 = aligned_rows(x_bf16, rows, in);
  } else {
    x_rounded = aligned_rows(x_rounded, rows, in);
  }
  over_output_blocks(in, out, [&](int64_t o0, int64_t o1) {
    switch (level) {
      case SimdLevel::kAmx:  // taken above
      case SimdLevel::kAvx512Bf16:
        simd::skinny_bf16_dot_avx512bf16(x_bf16, rows, in, w, o0, o1, y, out);
        break;
      case SimdLevel::kAvx512:
        simd::skinny_bf16_widen_avx512(x_rounded, rows, in, w, o0, o1, y, out);
        break;
      case SimdLevel::kAvx2:
        simd::skinny_bf16_widen_avx2(x_rounded, rows, in, w, o0, o1, y, out);
        break;
      case SimdLevel::kScalar:
        simd::skinny_bf16_widen_scalar(x_rounded, rows, in, w, o0, o1, y, out);
        break;
    }
  });
}

}  // namespace mla::ops
