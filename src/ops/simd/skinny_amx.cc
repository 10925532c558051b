// linear_bf16's skinny path on AMX-BF16 tiles (see skinny_kernels.h and
// skinny_amx_common.inc): compiled with -mamx-tile -mamx-bf16 only (no AVX flags, so the
// little scalar code here runs anywhere), called only when cpu_features().amx_usable says the
// OS granted the tile state to this process. No CPU the project has tested on has AMX: this
// file is checked by compilation, and its kernel by the same code run on the software tile
// model (skinny_amx_model.cc); docs/performance.md says how to run the hardware checks.
#include <immintrin.h>

#include "ops/simd/amx_tile_config.h"
#include "ops/simd/skinny_kernels.h"

namespace mla::ops::simd {
namespace {

// GCC's tile intrinsics paste the tile number into the instruction text: it must be a literal.
#define MLA_TILE_CASES(OP)       \
  if constexpr (T == 0) {        \
    OP(0);                       \
  } else if constexpr (T == 1) { \
    OP(1);                       \
  } else if constexpr (T == 2) { \
    OP(2);                       \
  } else if constexpr (T == 3) { \
    OP(3);                       \
  } else if constexpr (T == 4) { \
    OP(4);                       \
  } else if constexpr (T == 5) { \
    OP(5);                       \
  } else if constexpr (T == 6) { \
    OP(6);                       \
  } else {                       \
    static_assert(T == 7);       \
    OP(7);                       \
  }

struct HardwareTiles {
  void configure(const AmxTileConfig& config) {
    // LDTILECFG's 64 bytes: palette, start row, 14 reserved, colsb[16] (16-bit), rows[16].
    alignas(64) unsigned char bytes[64] = {};
    bytes[0] = 1;
    for (int t = 0; t < kAmxTiles; ++t) {
      bytes[16 + 2 * t] = static_cast<unsigned char>(config.colsb[t] & 0xff);
      bytes[17 + 2 * t] = static_cast<unsigned char>(config.colsb[t] >> 8);
      bytes[48 + t] = config.rows[t];
    }
    // GCC's _tile_loadconfig tells the compiler it reads 8 bytes only: make all 64 reach memory
    // (reserved bytes must be zero or LDTILECFG faults).
    __asm__ volatile("" : : "r"(bytes) : "memory");
    _tile_loadconfig(bytes);
  }
  void release() { _tile_release(); }
  template <int T>
  void zero() {
#define MLA_OP(t) _tile_zero(t)
    MLA_TILE_CASES(MLA_OP)
#undef MLA_OP
  }
  template <int T>
  void load(const void* base, int64_t stride) {
    // GCC's TILELOADD does not tell the compiler it reads memory: the staged copy must be
    // written out first, not kept in registers or dropped as dead.
    __asm__ volatile("" : : "r"(base) : "memory");
#define MLA_OP(t) _tile_loadd(t, base, stride)
    MLA_TILE_CASES(MLA_OP)
#undef MLA_OP
  }
  template <int T>
  void store(void* base, int64_t stride) {
#define MLA_OP(t) _tile_stored(t, base, stride)
    MLA_TILE_CASES(MLA_OP)
#undef MLA_OP
  }
  // The kernel multiplies into C tiles 4-6 from A tiles 1-3 and B tile 0 only.
  template <int C, int A, int B>
  void dpbf16ps() {
    static_assert(B == 0 && A >= 1 && A <= 3 && C == A + 3);
    if constexpr (A == 1) {
      _tile_dpbf16ps(4, 1, 0);
    } else if constexpr (A == 2) {
      _tile_dpbf16ps(5, 2, 0);
    } else {
      _tile_dpbf16ps(6, 3, 0);
    }
  }
};

#undef MLA_TILE_CASES

#include "ops/simd/skinny_amx_common.inc"

}  // namespace

void skinny_bf16_amx(const uint16_t* x_pairs, int64_t rows, int64_t in, const uint16_t* w,
                     int64_t o0, int64_t o1, float* y, int64_t out) {
  HardwareTiles tiles;
  AmxSkinny<HardwareTiles> kernel{tiles, x_pairs, rows, in, w, y, out, {}, {}};
  kernel.run(o0, o1);
}

}  // namespace mla::ops::simd
