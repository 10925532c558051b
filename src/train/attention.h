// Causal softmax attention for training, forward and backward, for every layout the models use:
// MHA (G = H), GQA (1 < G < H), MQA (G = 1) and naive MLA (G = H, key width Dn + Dr, value
// width Dv). Legend: B batch, S tokens per sequence, H query heads, G key/value heads,
// Dqk key width, Dv value width.
//
// Memory choice: forward KEEPS the probabilities P (B, H, S, S) for backward instead of
// recomputing them (flash-attention style). Keeping costs B*H*S^2 floats per layer; recomputing
// would cost one more S = Q K^T product and softmax per head in backward (about a third of the
// attention FLOPs). For the context lengths we train on the CPU (S <= 512) P is of the order of
// the other activations of a layer; see docs/training.md for the numbers and the crossover.
//
// Each (sequence, head) is two dense products through gemm (oneDNN in float32):
//   forward   S = scale Q K^T (S,S), causal softmax -> P, O = P V
//   backward  dP = dO V^T, dV += P^T dO, dS = P o (dP - rowsum(P o dP)) scale,
//             dQ += dS K, dK += dS^T Q
// With attention dropout p (training only) the product uses P' = dropout(P): O = P' V,
// dV += P'^T dO, dP = dropout_backward(dO V^T). P' is not stored: its mask is a pure function of
// (key, head, index), so backward recomputes P' from the saved P.
// Work is split over (sequence, KV head) pairs, so the heads that share a K/V group add into
// its dK/dV on one thread, in a fixed order: no races and thread-count independent results.
#pragma once

#include <cstdint>
#include <vector>

#include "mla/sparse.h"
#include "ops/attention.h"

namespace mla::train {

// The heads and strides of ops::AttentionHeads (the same strides hold for the gradients dq, dk,
// dv, dout), plus what training adds: B sequences of S tokens, token (b, s) at row b*S + s, K and
// V as plain arrays with their own token strides.
struct AttentionLayout : ops::AttentionHeads {
  int64_t batch = 0, seq = 0;
  int64_t k_token_stride = 0, v_token_stride = 0;
  double scale = 1.0;
  double dropout = 0.0;      // attention dropout probability; 0 in inference and evaluation
  uint64_t dropout_key = 0;  // differs per step and per layer
  // Sparse attention (window, block or exact top-k; DSA is not trainable here): key j of query i
  // outside the pattern gets probability exactly 0, heads below sparse.dense_heads stay dense.
  // Backward needs nothing else: dS = P o (dP - rowsum(P o dP)) is 0 where P is. Top-k's choice
  // is a constant of the step (it is piecewise constant in the scores), as in DeepSeek-V3.2.
  SparseSpec sparse;
  // With sparse.kind == kDsa: the indexer's selection, (B, S, S) bytes, key j of query i of
  // sequence b kept when key_mask[(b * S + i) * S + j] != 0, shared by the sparse heads. The
  // selection is an input (DeepSeek-V3.2's LM loss does not train the indexer), so gradients
  // flow through the kept keys' attention only.
  const uint8_t* key_mask = nullptr;
};

// Which keys 0..i query i of head h keeps under l.sparse; row holds its causal scores (i + 1),
// and keep[j] is set for the kept keys. Used by forward and by tests.
template <typename T>
void sparse_keep(const AttentionLayout& l, int64_t b, int64_t h, int64_t i, const T* row,
                 uint8_t* keep);

// out = attention(q, k, v); probs (B, H, S, S) receives P (zero above the diagonal).
template <typename T>
void attention_forward(T* out, T* probs, const T* q, const T* k, const T* v,
                       const AttentionLayout& l);

// dq, dk, dv += gradients, given dout and the probabilities saved by forward.
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* probs, const T* q, const T* k,
                        const T* v, const AttentionLayout& l);

}  // namespace mla::train
