// Element-wise pieces of the feed-forward and residual paths, forward and backward: GELU (tanh
// approximation, as GPT-2 and torch's approximate="tanh"), SwiGLU (silu(gate) * up, as
// DeepSeek's and LLaMA's MLP) and inverted dropout. Legend: N elements. Backward accumulates.
#pragma once

#include <cstdint>

namespace mla::train {

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n);
template <typename T>
void gelu_backward(T* dinp, const T* dout, const T* inp, int64_t n);

// out = silu(gate) * up
template <typename T>
void swiglu_forward(T* out, const T* gate, const T* up, int64_t n);
template <typename T>
void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n);

// Inverted dropout: out = keep ? inp / (1 - p) : 0, where element i is kept when a hash of
// (key, i) is at least p. The mask is a pure function of (key, i): nothing is stored, backward
// recomputes it, the result does not depend on threads, and a resumed run draws the same masks.
// p = 0 is the identity. `key` should differ per step and per call site (see dropout_key).
template <typename T>
void dropout_forward(T* out, const T* inp, int64_t n, double p, uint64_t key);
template <typename T>
void dropout_backward(T* dinp, const T* dout, int64_t n, double p, uint64_t key);

// Mixes a run seed, a step and a call site into one dropout key.
uint64_t dropout_key(uint64_t seed, int64_t step, int64_t site);

}  // namespace mla::train
