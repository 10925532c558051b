// Weight matrices of the whole model: loading (bf16 in place, FP8 block-scaled), random
// filling, products, and the SwiGLU MLP.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "mla/error.h"
#include "mla/weights.h"
#include "model/model_parts.h"
#include "ops/gemm.h"
#include "ops/linear_bf16.h"

namespace mla::detail {
namespace {

constexpr int64_t kFp8Block = 128;

const TensorInfo& checked_info(const CheckpointDir& ck, const std::string& name,
                               const std::vector<int64_t>& shape) {
  if (!ck.contains(name)) {
    throw Error(ck.dir() + ": missing tensor '" + name + "' required by the config");
  }
  const SafetensorsFile& file = ck.file_for(name);
  const TensorInfo& info = file.info(name);
  if (info.shape != shape) {
    throw Error(file.path() + ": tensor '" + name + "': expected shape " + shape_to_string(shape) +
                ", got " + shape_to_string(info.shape));
  }
  return info;
}

void check_finite(const std::string& where, const std::string& name, const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) {
      throw Error(where + ": tensor '" + name + "': value " + std::to_string(i) +
                  " is NaN or infinity");
    }
  }
}

// In parallel: a bf16 checkpoint's matrices are scanned straight from the mapping, which also
// pages them in (the threads fault pages concurrently).
void check_finite_bf16(const std::string& where, const std::string& name, const uint16_t* v,
                       int64_t n) {
  int64_t first_bad = n;
#pragma omp parallel for reduction(min : first_bad) schedule(static) if (n > (1 << 20))
  for (int64_t i = 0; i < n; ++i) {
    if ((v[i] & 0x7f80) == 0x7f80 && i < first_bad) first_bad = i;  // infinity or NaN
  }
  if (first_bad < n) {
    throw Error(where + ": tensor '" + name + "': value " + std::to_string(first_bad) +
                " is NaN or infinity");
  }
}

// The real weight of an FP8 tensor: fp8[i][j] * scale_inv[i / 128][j / 128].
std::vector<float> dequantize_fp8(const CheckpointDir& ck, const std::string& name, int64_t rows,
                                  int64_t cols) {
  const SafetensorsFile& file = ck.file_for(name);
  const std::string base = name.substr(0, name.size() - std::string(".weight").size());
  const std::string scale_name = base + ".weight_scale_inv";
  if (!ck.contains(scale_name)) {
    throw Error(file.path() + ": tensor '" + name + "' is F8_E4M3 but its block scales '" +
                scale_name + "' are missing");
  }
  const int64_t sr = (rows + kFp8Block - 1) / kFp8Block, sc = (cols + kFp8Block - 1) / kFp8Block;
  checked_info(ck, scale_name, {sr, sc});
  const std::vector<float> scales = ck.file_for(scale_name).read_f32(scale_name);
  std::vector<float> values = file.read_f32(name);
  for (int64_t i = 0; i < rows; ++i) {
    const float* srow = scales.data() + (i / kFp8Block) * sc;
    float* vrow = values.data() + i * cols;
    for (int64_t j = 0; j < cols; ++j) vrow[j] *= srow[j / kFp8Block];
  }
  return values;
}

// splitmix64: fast, deterministic, good enough for benchmark weights.
uint64_t next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

float uniform(uint64_t& state, float lo, float hi) {
  return lo + (hi - lo) * static_cast<float>(next(state) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace

void Matrix::apply(const float* x, int64_t rows, float* y) const {
  if (rows <= 0) return;
  if (is_fp8() || is_int8()) {
    linear_one_byte(x, rows, *this, y);
  } else if (is_bf16()) {
    ops::linear_bf16(x, rows, in, bf16, out, y);
  } else {
    ops::linear(x, rows, in, f32.data(), out, y);
  }
}

void Matrix::copy_row(int64_t r, float* dst) const {
  if (is_fp8() || is_int8()) {
    one_byte_row(*this, r, dst);
  } else if (is_bf16()) {
    convert_to_f32(bf16 + r * in, DType::kBF16, static_cast<size_t>(in), dst);
  } else {
    std::memcpy(dst, f32.data() + r * in, static_cast<size_t>(in) * sizeof(float));
  }
}

Matrix load_matrix(const CheckpointDir& ck, const std::string& name, int64_t out, int64_t in,
                   DType compute) {
  const TensorInfo& info = checked_info(ck, name, {out, in});
  const SafetensorsFile& file = ck.file_for(name);
  Matrix m;
  m.out = out;
  m.in = in;
  const int64_t n = out * in;
  if (compute == DType::kBF16 && info.dtype == DType::kBF16) {
    const std::span<const std::byte> bytes = file.bytes(name);
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(uint16_t) == 0) {
      m.bf16 = reinterpret_cast<const uint16_t*>(bytes.data());  // in place, never copied
    } else {
      m.bf16_owned.resize(static_cast<size_t>(n));
      std::memcpy(m.bf16_owned.data(), bytes.data(), bytes.size());
      m.bf16 = m.bf16_owned.data();
    }
    check_finite_bf16(file.path(), name, m.bf16, n);
    return m;
  }
  if (compute == DType::kBF16 && info.dtype == DType::kF8E4M3) {
    const std::string scale_name = name.substr(0, name.size() - 7) + ".weight_scale_inv";
    if (!ck.contains(scale_name)) {
      throw Error(file.path() + ": tensor '" + name + "' is F8_E4M3 but its block scales '" +
                  scale_name + "' are missing");
    }
    m.block_cols = (in + kFp8Block - 1) / kFp8Block;
    checked_info(ck, scale_name, {(out + kFp8Block - 1) / kFp8Block, m.block_cols});
    m.block_scale = ck.file_for(scale_name).read_f32(scale_name);
    check_finite(ck.file_for(scale_name).path(), scale_name, m.block_scale.data(),
                 static_cast<int64_t>(m.block_scale.size()));
    m.fp8 = reinterpret_cast<const uint8_t*>(file.bytes(name).data());  // in place
    for (int64_t i = 0; i < n; ++i) {
      if ((m.fp8[i] & 0x7f) == 0x7f) {  // e4m3fn has no infinity; 0x7f/0xff are NaN
        throw Error(file.path() + ": tensor '" + name + "': value " + std::to_string(i) +
                    " is NaN or infinity");
      }
    }
    return m;
  }
  std::vector<float> values =
      info.dtype == DType::kF8E4M3 ? dequantize_fp8(ck, name, out, in) : file.read_f32(name);
  check_finite(file.path(), name, values.data(), n);
  if (compute == DType::kBF16) {
    m.bf16_owned = ops::to_bf16(values);
    m.bf16 = m.bf16_owned.data();
  } else {
    m.f32 = std::move(values);
  }
  return m;
}

std::vector<float> load_vector(const CheckpointDir& ck, const std::string& name, int64_t size) {
  checked_info(ck, name, {size});
  const SafetensorsFile& file = ck.file_for(name);
  std::vector<float> v = file.read_f32(name);
  check_finite(file.path(), name, v.data(), size);
  return v;
}

Matrix random_matrix(int64_t out, int64_t in, DType compute, uint64_t seed) {
  Matrix m;
  m.out = out;
  m.in = in;
  const size_t n = static_cast<size_t>(out * in);
  const float bound = std::sqrt(3.0f / static_cast<float>(in));
  uint64_t state = seed * 0x2545f4914f6cdd1dULL + 1;
  if (compute == DType::kBF16) {
    m.bf16_owned.resize(n);
    for (size_t i = 0; i < n; ++i) m.bf16_owned[i] = f32_to_bf16(uniform(state, -bound, bound));
    m.bf16 = m.bf16_owned.data();
  } else {
    m.f32.resize(n);
    for (size_t i = 0; i < n; ++i) m.f32[i] = uniform(state, -bound, bound);
  }
  return m;
}

std::vector<float> random_vector(int64_t size, float lo, float hi, uint64_t seed) {
  uint64_t state = seed * 0x2545f4914f6cdd1dULL + 7;
  std::vector<float> v(static_cast<size_t>(size));
  for (float& x : v) x = uniform(state, lo, hi);
  return v;
}

SwiGlu load_swiglu(const CheckpointDir& ck, const std::string& prefix, int64_t d, int64_t m,
                   DType compute) {
  SwiGlu s;
  s.gate = load_matrix(ck, prefix + "gate_proj.weight", m, d, compute);
  s.up = load_matrix(ck, prefix + "up_proj.weight", m, d, compute);
  s.down = load_matrix(ck, prefix + "down_proj.weight", d, m, compute);
  return s;
}

SwiGlu random_swiglu(int64_t d, int64_t m, DType compute, uint64_t seed) {
  SwiGlu s;
  s.gate = random_matrix(m, d, compute, 3 * seed);
  s.up = random_matrix(m, d, compute, 3 * seed + 1);
  s.down = random_matrix(d, m, compute, 3 * seed + 2);
  return s;
}

void Matrix::quantize_int8() {
  if (is_int8() || empty()) return;
  std::vector<int8_t> codes(static_cast<size_t>(out * in));
  std::vector<float> scales(static_cast<size_t>(out));
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(in));
#pragma omp for
    for (int64_t o = 0; o < out; ++o) {
      copy_row(o, row.data());  // before q is set: copy_row reads the current form
      float top = 0.0f;
      for (float v : row) top = std::max(top, std::fabs(v));
      const float s = top > 0.0f ? top / 127.0f : 1.0f;
      scales[o] = s;
      for (int64_t i = 0; i < in; ++i) {
        codes[o * in + i] =
            static_cast<int8_t>(std::lrint(std::clamp(row[i] / s, -127.0f, 127.0f)));
      }
    }
  }
  q = std::move(codes);
  scale = std::move(scales);
  f32 = {};
  bf16_owned = {};
  bf16 = nullptr;
  fp8 = nullptr;
  block_scale = {};
}

void swiglu_forward(const SwiGlu& w, const float* x, int64_t n, float* hidden, float* y) {
  const int64_t m = w.width();
  float* g = hidden;
  float* u = hidden + n * m;
  w.gate.apply(x, n, g);
  w.up.apply(x, n, u);
  for (int64_t i = 0; i < n * m; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  w.down.apply(g, n, y);
}

}  // namespace mla::detail
