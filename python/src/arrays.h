// Reading NumPy (or any buffer-protocol) arrays without copying them, and making output arrays.
// Legend: B batch, S tokens, W the last (feature) dimension.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <span>
#include <vector>

namespace mla::python {

// An input of shape (B, S, W) or (S, W) (then B = 1), read in place.
struct InputView {
  std::span<const float> data;  // the caller's memory for float32; `scratch` for bf16
  int64_t batch = 0, seq = 0;
  bool two_dims = false;  // (S, W): outputs drop the batch dimension too
};

// Checks x (C-contiguous; float32, or bf16 bits as 16-bit integers when bf16) and its last
// dimension; throws mla::Error naming `what` otherwise. float32 is used in place; bf16 is widened
// into `scratch` (the layer computes in float32). Records the address read (input_address()).
InputView read_input(const pybind11::buffer& x, bool bf16, int64_t width, const char* what,
                     std::vector<float>& scratch);

// The address of the memory read_input last read from the caller: how the tests prove the
// input was not copied.
uintptr_t input_address();

// A new float32 array of `shape`, or `out` after checking it is float32, C-contiguous, writable
// and exactly of `shape` (the result is written straight into it).
pybind11::array_t<float> output_array(const std::vector<int64_t>& shape,
                                      const pybind11::object& out);

}  // namespace mla::python
