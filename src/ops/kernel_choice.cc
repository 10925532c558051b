#include "ops/kernel_choice.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "mla/dtype.h"
#include "mla/error.h"
#include "mla/quantized_row.h"
#include "ops/cache_line_vector.h"
#include "ops/simd/latent_kernels.h"
#include "ops/simd/skinny_kernels.h"

namespace mla::ops {
namespace {

constexpr size_t kFamilies = std::size(kKernelFamilies);

size_t index_of(KernelFamily f) {
  return static_cast<size_t>(f);
}

// The highest SIMD level a SIMD family has a kernel for: float32 families have no bf16-dot
// variant (AVX512_BF16 runs them as AVX-512); only the skinny bf16-weight products have an AMX
// kernel.
int top_level(KernelFamily f) {
  SimdLevel top = supported_simd_level();
  if (f != KernelFamily::kSkinnyBf16) top = std::min(top, SimdLevel::kAvx512Bf16);
  if (f == KernelFamily::kLatentF32 || f == KernelFamily::kSkinnyF32)
    top = std::min(top, SimdLevel::kAvx512);
  return static_cast<int>(top);
}

// Candidates of a family on this CPU, lowest first.
std::vector<int> candidates(KernelFamily f) {
  std::vector<int> out;
  if (f == KernelFamily::kGemmBf16) {
    out.push_back(kGemmWidenSgemm);
    // oneDNN's bf16 needs AVX-512.
    if (supported_simd_level() >= SimdLevel::kAvx512) out.push_back(kGemmOnednnBf16);
    return out;
  }
  for (int level = 0; level <= top_level(f); ++level) out.push_back(level);
  return out;
}

// The best candidate at or below a forced SIMD level. Called by every kernel_variant() while
// MLA_SIMD holds the level, so it allocates nothing (a warm decode step must not).
int clamp_to_level(KernelFamily f, SimdLevel level) {
  if (f == KernelFamily::kGemmBf16) {
    return level >= SimdLevel::kAvx512 && supported_simd_level() >= SimdLevel::kAvx512
               ? kGemmOnednnBf16
               : kGemmWidenSgemm;
  }
  return std::min(static_cast<int>(level), top_level(f));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Best of `reps` timings of fn() after a warm-up call, FLOPs / second in GFLOP/s; reps == 1:
// one cold call (the scalar candidate, 30-50x slower than the others, only needs ranking).
template <class Fn>
double best_gflops(double flops, int reps, const Fn& fn) {
  if (reps > 1) fn();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, seconds_since(t));
  }
  return flops / best * 1e-9;
}

// Repetitions: the scalar candidate is 50-100x slower, one run of it is enough to rank it.
int reps_for(int variant) {
  return variant == static_cast<int>(SimdLevel::kScalar) ? 1 : 5;
}

// One decode-like work item: 32 query rows (heads of one token) over 192 keys of DeepSeek's
// 576-wide latent rows (R = 512), the whole item in L2 as in the real kernel.
struct LatentProblem {
  static constexpr int64_t kRows = 32, kKeys = 192, kRank = 512, kWidth = 576;
  std::vector<float> q, out, scratch;
  std::vector<float> cache_f32;
  std::vector<uint16_t> cache_bf16;
  std::vector<unsigned char> cache_quant;
  simd::LatentItem item;

  explicit LatentProblem(DType dtype) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    q.resize(kRows * kWidth);
    for (float& v : q) v = u(rng);
    cache_f32.resize(kKeys * kWidth);
    for (float& v : cache_f32) v = u(rng);
    out.resize(kRows * kRank);
    const simd::LatentScratch l = simd::latent_scratch(kRows, kWidth, kRank);
    scratch.resize(l.total + simd::kLatentPad);
    item.q = q.data();
    item.q_token_stride = kRows * kWidth;
    item.q_head_stride = kWidth;
    item.t0 = 0;
    item.t1 = 1;
    item.h0 = 0;
    item.h1 = kRows;
    item.width = kWidth;
    item.rank = kRank;
    item.scale = 0.04f;
    item.context_before = kKeys - 1;
    item.kv = KvView::contiguous(cache_f32.data(), kWidth);
    if (dtype == DType::kBF16) {
      cache_bf16.resize(cache_f32.size());
      convert_from_f32(cache_f32.data(), cache_f32.size(), DType::kBF16, cache_bf16.data());
      item.kv.base = cache_bf16.data();
      item.kv.dtype = DType::kBF16;
    } else if (is_quantized_cache_dtype(dtype)) {
      const int64_t bytes = quantized_row_bytes(kRank, kWidth - kRank);
      cache_quant.resize(static_cast<size_t>(kKeys * bytes));
      for (int64_t j = 0; j < kKeys; ++j)
        quantize_row(cache_f32.data() + j * kWidth, kRank, kWidth - kRank, dtype,
                     cache_quant.data() + j * bytes);
      item.kv.base = cache_quant.data();
      item.kv.token_stride = bytes;
      item.kv.dtype = dtype;
    }
    item.k0 = 0;
    item.k1 = kKeys;
    item.out = out.data();
    item.out_token_stride = kRows * kRank;
    item.out_head_stride = kRank;
    item.scratch = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) &
                                            ~uintptr_t{63});
  }
  double flops() const { return static_cast<double>(kRows) * kKeys * (2.0 * kWidth + 2.0 * kRank); }
};

double measure_latent(DType dtype, int variant) {
  LatentProblem p(dtype);
  void (*fn)(const simd::LatentItem&) = simd::latent_item_scalar;
  switch (static_cast<SimdLevel>(variant)) {
    case SimdLevel::kAmx:  // not a latent candidate (candidates())
    case SimdLevel::kAvx512Bf16:
      fn = simd::latent_item_avx512bf16;
      break;
    case SimdLevel::kAvx512:
      fn = simd::latent_item_avx512;
      break;
    case SimdLevel::kAvx2:
      fn = simd::latent_item_avx2;
      break;
    case SimdLevel::kScalar:
      break;
  }
  if (variant == static_cast<int>(SimdLevel::kScalar)) p.item.k1 = simd::kLatentTile;  // 1 tile
  const double flops = p.flops() * static_cast<double>(p.item.k1) / LatentProblem::kKeys;
  return best_gflops(flops, reps_for(variant), [&] { fn(p.item); });
}

// Eight rows (a batch-8 decode step, where compute shows) against 128 outputs of 1024 inputs:
// the weights (256 KiB in bf16) stay in L2, so the figure is the kernel's arithmetic rate.
double measure_skinny(bool bf16, int variant) {
  constexpr int64_t kRows = 8, kIn = 1024, kAllOut = 128;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  // x on a cache line, as skinny_linear hands it to the kernels (ops/skinny.cc).
  CacheLineVector<float> x_vec(kRows * kIn);
  CacheLineVector<uint16_t> x16_vec(x_vec.size());
  std::vector<float> w(kAllOut * kIn), y(kRows * kAllOut);
  std::vector<uint16_t> w16(w.size());
  for (float& v : x_vec) v = u(rng);
  for (float& v : w) v = u(rng);
  convert_from_f32(x_vec.data(), x_vec.size(), DType::kBF16, x16_vec.data());
  const float* x = x_vec.data();
  const uint16_t* x16 = x16_vec.data();
  CacheLineVector<uint16_t> pairs(static_cast<size_t>(simd::amx_pairs_size(kRows, kIn)));
  convert_from_f32(w.data(), w.size(), DType::kBF16, w16.data());
  const auto level = static_cast<SimdLevel>(variant);
  const int64_t kOut = level == SimdLevel::kScalar ? kAllOut / 4 : kAllOut;
  const double flops = 2.0 * kRows * kIn * kOut;
  return best_gflops(flops, reps_for(variant), [&] {
    if (!bf16) {
      if (level >= SimdLevel::kAvx512) {
        simd::skinny_f32_avx512(x, kRows, kIn, w.data(), 0, kOut, y.data(), kOut);
      } else if (level == SimdLevel::kAvx2) {
        simd::skinny_f32_avx2(x, kRows, kIn, w.data(), 0, kOut, y.data(), kOut);
      } else {
        simd::skinny_f32_scalar(x, kRows, kIn, w.data(), 0, kOut, y.data(), kOut);
      }
      return;
    }
    switch (level) {
      case SimdLevel::kAmx:  // x packed per product, as skinny_linear_bf16 does
        simd::pack_amx_pairs(x16, kRows, kIn, pairs.data());
        simd::skinny_bf16_amx(pairs.data(), kRows, kIn, w16.data(), 0, kOut, y.data(), kOut);
        break;
      case SimdLevel::kAvx512Bf16:
        simd::skinny_bf16_dot_avx512bf16(x16, kRows, kIn, w16.data(), 0, kOut, y.data(), kOut);
        break;
      case SimdLevel::kAvx512:
        simd::skinny_bf16_widen_avx512(x, kRows, kIn, w16.data(), 0, kOut, y.data(), kOut);
        break;
      case SimdLevel::kAvx2:
        simd::skinny_bf16_widen_avx2(x, kRows, kIn, w16.data(), 0, kOut, y.data(), kOut);
        break;
      case SimdLevel::kScalar:
        simd::skinny_bf16_widen_scalar(x, kRows, kIn, w16.data(), 0, kOut, y.data(), kOut);
        break;
    }
  });
}

double measure(KernelFamily f, int variant) {
  switch (f) {
    case KernelFamily::kLatentF32:
      return measure_latent(DType::kF32, variant);
    case KernelFamily::kLatentBf16:
      return measure_latent(DType::kBF16, variant);
    case KernelFamily::kLatentFp8:
      return measure_latent(DType::kF8E4M3, variant);
    case KernelFamily::kLatentInt8:
      return measure_latent(DType::kI8, variant);
    case KernelFamily::kSkinnyF32:
      return measure_skinny(false, variant);
    case KernelFamily::kSkinnyBf16:
      return measure_skinny(true, variant);
    case KernelFamily::kGemmBf16:
      return measure_gemm_bf16_variant(variant);
  }
  return 0.0;
}

const char* problem_of(KernelFamily f) {
  switch (f) {
    case KernelFamily::kLatentF32:
    case KernelFamily::kLatentBf16:
    case KernelFamily::kLatentFp8:
    case KernelFamily::kLatentInt8:
      return "one work item: 32 query rows x 192 keys, R = 512, Dr = 64, 1 thread";
    case KernelFamily::kSkinnyF32:
    case KernelFamily::kSkinnyBf16:
      return "8 rows x 1024 inputs x 128 outputs, 1 thread";
    case KernelFamily::kGemmBf16:
      return "128 rows x 512 inputs x 256 outputs, 1 thread";
  }
  return "";
}

struct FamilyState {
  std::mutex mutex;
  bool measured = false;
  KernelChoiceReport report;  // candidates and figures, once measured
  int measured_choice = -1;
  std::atomic<int> pinned{-1};  // set_kernel_variant
  std::atomic<int> cached{-1};  // measured_choice, read without the lock
};

std::array<FamilyState, kFamilies>& states() {
  static std::array<FamilyState, kFamilies> s;
  return s;
}

void calibrate_locked(KernelFamily f, FamilyState& s) {
  if (s.measured) return;
  const auto start = std::chrono::steady_clock::now();
  KernelChoiceReport r;
  r.family = std::string(kernel_family_name(f));
  r.problem = problem_of(f);
  for (int v : candidates(f)) r.candidates.push_back({v, kernel_variant_name(f, v), measure(f, v)});
  // The highest candidate unless another beats it by more than the margin.
  size_t pick = r.candidates.size() - 1;
  for (size_t i = 0; i < r.candidates.size(); ++i)
    if (r.candidates[i].gflops > r.candidates[pick].gflops * (1.0 + kMargin)) pick = i;
  r.chosen = r.candidates[pick].variant;
  r.how = "measured";
  r.calibration_ms = seconds_since(start) * 1e3;
  s.report = r;
  s.measured_choice = r.chosen;
  s.measured = true;
  s.cached.store(r.chosen, std::memory_order_release);
}

}  // namespace

int kernel_variant(KernelFamily f) {
  if (simd_level_forced()) return clamp_to_level(f, simd_level());
  FamilyState& s = states()[index_of(f)];
  const int pinned = s.pinned.load(std::memory_order_relaxed);
  if (pinned >= 0) return pinned;
  const int cached = s.cached.load(std::memory_order_acquire);
  if (cached >= 0) return cached;
  std::lock_guard<std::mutex> lock(s.mutex);
  calibrate_locked(f, s);
  return s.measured_choice;
}

KernelChoiceReport kernel_choice_report(KernelFamily f) {
  FamilyState& s = states()[index_of(f)];
  KernelChoiceReport r;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    calibrate_locked(f, s);
    r = s.report;
  }
  r.chosen = kernel_variant(f);
  if (simd_level_forced()) {
    r.how = "MLA_SIMD / set_simd_level (" + std::string(simd_level_name(simd_level())) + ")";
  } else if (s.pinned.load() >= 0) {
    r.how = "set_kernel_variant";
  }
  return r;
}

int set_kernel_variant(KernelFamily f, std::optional<int> variant) {
  FamilyState& s = states()[index_of(f)];
  if (!variant) {
    s.pinned.store(-1);
    return kernel_variant(f);
  }
  const std::vector<int> c = candidates(f);
  int pick = c.front();
  for (int v : c)
    if (v <= *variant) pick = v;
  s.pinned.store(pick);
  return kernel_variant(f);
}

KernelFamily latent_family(DType cache) {
  switch (cache) {
    case DType::kBF16:
      return KernelFamily::kLatentBf16;
    case DType::kF8E4M3:
      return KernelFamily::kLatentFp8;
    case DType::kI8:
      return KernelFamily::kLatentInt8;
    default:
      return KernelFamily::kLatentF32;
  }
}

std::string_view kernel_family_name(KernelFamily f) {
  switch (f) {
    case KernelFamily::kLatentF32:
      return "latent-attention-f32-cache";
    case KernelFamily::kLatentBf16:
      return "latent-attention-bf16-cache";
    case KernelFamily::kLatentFp8:
      return "latent-attention-fp8-cache";
    case KernelFamily::kLatentInt8:
      return "latent-attention-int8-cache";
    case KernelFamily::kSkinnyF32:
      return "skinny-f32-weights";
    case KernelFamily::kSkinnyBf16:
      return "skinny-bf16-weights";
    case KernelFamily::kGemmBf16:
      return "gemm-bf16-weights";
  }
  return "unknown";
}

std::string kernel_variant_name(KernelFamily f, int variant) {
  if (f == KernelFamily::kGemmBf16)
    return variant == kGemmOnednnBf16 ? "onednn-bf16" : "widen-sgemm";
  const auto level = static_cast<SimdLevel>(variant);
  const std::string isa(simd_level_name(level));
  // Every family but the float32 ones widens its storage below the bf16 dot level.
  const bool bf16 = f != KernelFamily::kLatentF32 && f != KernelFamily::kSkinnyF32;
  if (level == SimdLevel::kScalar) return bf16 ? "scalar-widen" : "scalar";
  if (level == SimdLevel::kAmx) return "amx-bf16";
  if (!bf16) return isa + "-fma";
  return level == SimdLevel::kAvx512Bf16 ? isa + "-dot" : isa + "-widen";
}

}  // namespace mla::ops
