// Softmax cross-entropy over the vocabulary, fused: forward keeps the probabilities, backward
// turns them into dlogits. Legend: N rows (batch x tokens), V vocabulary. A target < 0 marks a
// position that is not scored (the prompt part of a synthetic task); the loss is the mean over
// scored positions.
#pragma once

#include <cstdint>

namespace mla::train {

// probs (N,V) = softmax(logits (N,V)); returns the mean loss over scored rows (0 when none) and
// writes their count to *scored.
template <typename T>
double cross_entropy_forward(T* probs, const T* logits, const int32_t* targets, int64_t n,
                             int64_t v, int64_t* scored);

// dlogits (N,V) += dloss * (probs - onehot(target)) / scored for scored rows.
template <typename T>
void cross_entropy_backward(T* dlogits, const T* probs, const int32_t* targets, int64_t n,
                            int64_t v, int64_t scored, double dloss);

}  // namespace mla::train
