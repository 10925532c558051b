// Fused latent attention, AVX-512 F/BW/VL + FMA (built with those flags only; see
// latent_kernels.h). Float32 arithmetic; a bf16 cache is widened tile by tile.
// GCC 12's AVX-512 intrinsics self-initialise their _mm512_undefined_* operands, which
// -W(maybe-)uninitialized reports at inlined calls (GCC bug 105593).
// Clang has no -Wmaybe-uninitialized (and would warn about the unknown option), so GCC only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

#include "ops/simd/latent_kernels.h"

namespace mla::ops {
namespace {

#include "ops/simd/latent_common.inc"
#include "ops/simd/vec512.inc"

}  // namespace

namespace simd {

void latent_item_avx512(const LatentItem& item) {
  latent_item_f32<V512>(item);
}

}  // namespace simd
}  // namespace mla::ops
