#include "ops/sparse_select.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mla::ops {

int64_t select_window(int64_t t, int64_t window, int32_t* out) {
  const int64_t first = std::max<int64_t>(0, t - window + 1);
  for (int64_t j = first; j <= t; ++j) *out++ = static_cast<int32_t>(j);
  return t - first + 1;
}

int64_t select_blocks(int64_t t, int64_t block, int64_t local, int64_t global, int32_t* out) {
  const int64_t qb = t / block;
  int64_t n = 0;
  for (int64_t kb = 0; kb <= qb; ++kb) {
    if (kb >= global && qb - kb >= local) {
      kb = qb - local;  // skip straight to the first local block (the loop adds one)
      continue;
    }
    const int64_t end = std::min(t, kb * block + block - 1);
    for (int64_t j = kb * block; j <= end; ++j) out[n++] = static_cast<int32_t>(j);
  }
  return n;
}

template <typename T>
int64_t select_top_k(const T* scores, int64_t n, int64_t k, int32_t* out,
                     std::vector<int32_t>& order) {
  if (k >= n) {
    for (int64_t j = 0; j < n; ++j) out[j] = static_cast<int32_t>(j);
    return n;
  }
  if (order.size() < static_cast<size_t>(n)) order.resize(static_cast<size_t>(n));
  std::iota(order.begin(), order.begin() + n, 0);
  // NaN scores sort last, so a NaN never displaces a real score.
  const auto before = [scores](int32_t a, int32_t b) {
    const T sa = scores[a], sb = scores[b];
    const bool na = std::isnan(sa), nb = std::isnan(sb);
    if (na || nb) return na != nb ? nb : a < b;
    if (sa != sb) return sa > sb;
    return a < b;
  };
  std::nth_element(order.begin(), order.begin() + k, order.begin() + n, before);
  std::copy(order.begin(), order.begin() + k, out);
  std::sort(out, out + k);
  return k;
}

template int64_t select_top_k<float>(const float*, int64_t, int64_t, int32_t*,
                                     std::vector<int32_t>&);
template int64_t select_top_k<double>(const double*, int64_t, int64_t, int32_t*,
                                      std::vector<int32_t>&);

}  // namespace mla::ops
