// Linear layer and token embedding, forward and backward (llm.c style: outputs first, then
// inputs, then weights, then sizes). Legend: N = rows (batch x tokens), C = in features,
// OC = out features, V = vocabulary. Weights are [out, in] and applied as y = x W^T.
// Every backward ACCUMULATES (+=) into the gradients it is given, so gradients of a weight used
// twice (a tied head) and gradient accumulation over micro-batches come for free. A null dinp
// skips the input gradient (the embedding output needs none).
#pragma once

#include <cstdint>

namespace mla::train {

// out (N,OC) = inp (N,C) w^T, w (OC,C).
template <typename T>
void linear_forward(T* out, const T* inp, const T* w, int64_t n, int64_t c, int64_t oc);

// dinp (N,C) += dout (N,OC) w;  dw (OC,C) += dout^T inp.
template <typename T>
void linear_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, int64_t n, int64_t c,
                     int64_t oc);

// The bias add of forward is ops::add_bias_rows (ops/norm.h), shared with inference.
// db (OC) += column sums of dout (N,OC); nothing when db is null.
template <typename T>
void bias_backward(T* db, const T* dout, int64_t n, int64_t oc);
// out (N,C) = wte[tokens[n]], wte (V,C). Tokens must already be checked to lie in [0, V).
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t n, int64_t c);

// dwte (V,C) += scatter of dout (N,C) by token. Columns are split across threads (never rows), so
// the order of the additions, and therefore the result, does not depend on the thread count.
template <typename T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t n, int64_t c);

}  // namespace mla::train
