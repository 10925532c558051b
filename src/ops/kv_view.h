// KvView: where the keys (or values) of one sequence live. Tokens are grouped in pages of
// `page_size` tokens; a contiguous cache is the special case of pages laid end to end. Every
// attention kernel reads the cache through this view, so paged and contiguous caches share
// one code path.
#pragma once

#include <cstdint>

#include "mla/dtype.h"

namespace mla::ops {

struct KvView {
  const void* base = nullptr;          // contiguous cache: token j at base + j * token_stride
  const void* const* pages = nullptr;  // paged cache (when set): pages[p] holds tokens
  int64_t page_size = 0;               //   p * page_size .. p * page_size + page_size - 1
  int64_t token_stride = 0;            // elements between consecutive tokens inside a page
  int64_t offset = 0;         // elements from a token's row start to this view's data (V after K)
  DType dtype = DType::kF32;  // F32 or BF16

  // Element offset of token j's row, as a pointer of the storage type.
  template <typename T>
  const T* row(int64_t j) const {
    if (pages == nullptr) return static_cast<const T*>(base) + j * token_stride + offset;
    return static_cast<const T*>(pages[j / page_size]) + (j % page_size) * token_stride + offset;
  }

  static KvView contiguous(const float* data, int64_t token_stride) {
    KvView view;
    view.base = data;
    view.token_stride = token_stride;
    return view;
  }

  static KvView paged(const void* const* page_table, int64_t page_size, int64_t token_stride,
                      int64_t offset = 0, DType dtype = DType::kF32) {
    KvView view;
    view.pages = page_table;
    view.page_size = page_size;
    view.token_stride = token_stride;
    view.offset = offset;
    view.dtype = dtype;
    return view;
  }
};

}  // namespace mla::ops
