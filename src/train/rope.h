// Rotary position embedding for training, DeepSeek's interleaved convention: the pair
// (x[2k], x[2k+1]) of a rotary slice is rotated by angle t * f_k, t = the token's position in
// its sequence (training sequences start at 0). cos_sin is (S, Dr) as ops::rope_cos_sin writes
// it (cos_0, sin_0, cos_1, sin_1, ...), so training and inference use the same numbers, YaRN
// included. Legend: B batch, S tokens per sequence, Dr rotary width.
//
// Both functions work IN PLACE: forward rotates x; backward turns the gradient with respect to
// the rotated slice into the gradient with respect to the slice before rotation (the transpose
// rotation, angle -t f_k). RoPE needs no saved activation for backward, so the forward can
// overwrite its input. Backward therefore assigns (=) rather than accumulates.
#pragma once

#include <cstdint>
#include <vector>

#include "mla/config.h"

namespace mla::train {

// Where the rotary slices sit: token (b, s) at x + (b*S + s) * token_stride, and `vectors` slices
// per token, slice v at + v * vector_stride, each Dr wide.
struct RopeLayout {
  int64_t batch = 0, seq = 0;
  int64_t vectors = 1;
  int64_t token_stride = 0, vector_stride = 0;
  int64_t dr = 0;
};

// (S, Dr) cos/sin table for positions 0 .. S-1 of `config`'s rotary frequencies (YaRN applied).
std::vector<float> rope_table(const MlaConfig& config, int64_t seq);

template <typename T>
void rope_forward(T* x, const float* cos_sin, const RopeLayout& layout);

template <typename T>
void rope_backward(T* dx, const float* cos_sin, const RopeLayout& layout);

}  // namespace mla::train
