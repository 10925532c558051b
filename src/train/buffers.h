// Activation buffers of the training code: std::vectors that grow to the largest call and are
// then reused, so steady-state training steps allocate nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace mla::train {

// Grows v to at least n elements (never shrinks).
template <typename T>
void grow(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

// Grows v and sets its first n elements to zero: gradient buffers before a backward that
// accumulates into them.
template <typename T>
void zero_first(std::vector<T>& v, int64_t n) {
  grow(v, n);
  std::fill(v.begin(), v.begin() + n, T(0));
}

}  // namespace mla::train
