// Which cached tokens a query attends to under a sparse pattern (include/mla/sparse.h). Query
// number `t` of the cache (it sees keys 0..t) gets an ascending list of key numbers; the cost of
// window and block selection grows with the list, not with t.
#pragma once

#include <cstdint>
#include <vector>

namespace mla::ops {

// Keys max(0, t - window + 1) .. t. Returns the count (<= window); out needs that many slots.
int64_t select_window(int64_t t, int64_t window, int32_t* out);

// Keys of the blocks kb <= t / block with t / block - kb < local or kb < global, capped at t.
// Returns the count (<= (local + global) * block).
int64_t select_blocks(int64_t t, int64_t block, int64_t local, int64_t global, int32_t* out);

// The k largest of scores[0..n) (ties go to the lower index, NaN ranks last), written ascending
// to out; returns min(k, n). `order` is scratch, grown to n and kept by the caller. Float for
// inference, float or double for training's sparse attention.
template <typename T>
int64_t select_top_k(const T* scores, int64_t n, int64_t k, int32_t* out,
                     std::vector<int32_t>& order);

}  // namespace mla::ops
