// The B operand of the AMX skinny kernel (skinny_kernels.h): x in VNNI pair order, zero-padded
// to whole 32-input tiles, packed once per product in plain C++.
#include "ops/simd/skinny_kernels.h"

namespace mla::ops::simd {

int64_t amx_pairs_size(int64_t rows, int64_t in) {
  return (in + 31) / 32 * 32 * rows;
}

void pack_amx_pairs(const uint16_t* x, int64_t rows, int64_t in, uint16_t* pairs) {
  const int64_t padded_pairs = (in + 31) / 32 * 16;
  for (int64_t p = 0; p < padded_pairs; ++p)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t k = 2 * p + j;
        pairs[(p * rows + r) * 2 + j] = k < in ? x[r * in + k] : uint16_t{0};
      }
}

}  // namespace mla::ops::simd
