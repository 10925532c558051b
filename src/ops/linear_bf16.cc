#include "ops/linear_bf16.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <unordered_map>

#include "mla/dtype.h"
#include "mla/error.h"
#include "ops/cache_line_vector.h"
#include "ops/gemm.h"
#include "ops/kernel_choice.h"
#include "ops/skinny.h"

namespace mla::ops {
namespace {

using dnnl::memory;

// oneDNN primitives are costly to create and cheap to run: one per (rows, in, out), per thread.
struct MatmulCache {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  struct Entry {
    memory::desc src, weights, dst;
    dnnl::matmul matmul;
    memory src_mem, weights_mem, dst_mem;  // re-pointed per call: no allocation once warm
    std::unordered_map<int, memory> args;
    bool widen = false;  // oneDNN has no bf16 matmul for this CPU: widen blocks to f32 instead
  };
  std::map<std::tuple<int64_t, int64_t, int64_t>, Entry> entries;
  CacheLineVector<uint16_t> x_bf16;     // on a cache line: the skinny kernels then take it as it is
  CacheLineVector<float> x_f32, w_f32;  // the widened x; the widening fallback's scratch

  Entry& get(int64_t rows, int64_t in, int64_t out) {
    auto key = std::make_tuple(rows, in, out);
    auto it = entries.find(key);
    if (it != entries.end()) return it->second;
    if (entries.size() >= 64) entries.clear();  // prefill lengths vary; keep the cache bounded
    Entry e;
    e.src = memory::desc({rows, in}, memory::data_type::bf16, memory::format_tag::ab);
    // w is (out, in) row-major, i.e. the (in, out) weights matrix in column-major "ba" order.
    e.weights = memory::desc({in, out}, memory::data_type::bf16, memory::format_tag::ba);
    e.dst = memory::desc({rows, out}, memory::data_type::f32, memory::format_tag::ab);
    try {
      e.matmul = dnnl::matmul(
          dnnl::matmul::primitive_desc(dnnl::matmul::desc(e.src, e.weights, e.dst), engine));
    } catch (const dnnl::error&) {
      e.widen = true;  // e.g. a CPU without AVX-512 (or DNNL_MAX_CPU_ISA=AVX2)
      return entries.emplace(key, std::move(e)).first->second;
    }
    e.src_mem = memory(e.src, engine, DNNL_MEMORY_NONE);
    e.weights_mem = memory(e.weights, engine, DNNL_MEMORY_NONE);
    e.dst_mem = memory(e.dst, engine, DNNL_MEMORY_NONE);
    e.args = {
        {DNNL_ARG_SRC, e.src_mem}, {DNNL_ARG_WEIGHTS, e.weights_mem}, {DNNL_ARG_DST, e.dst_mem}};
    return entries.emplace(key, std::move(e)).first->second;
  }
};

// The same products (x and w both rounded to bf16, float32 sums) through sgemm, widening w in
// blocks of kBlock rows so the scratch stays small.
void widen_and_multiply(MatmulCache& cache, int64_t rows, int64_t in, const uint16_t* w,
                        int64_t out, float* y) {
  constexpr int64_t kBlock = 256;
  cache.x_f32.resize(cache.x_bf16.size());
  convert_to_f32(cache.x_bf16.data(), DType::kBF16, cache.x_f32.size(), cache.x_f32.data());
  cache.w_f32.resize(static_cast<size_t>(std::min(out, kBlock) * in));
  for (int64_t o0 = 0; o0 < out; o0 += kBlock) {
    const int64_t n = std::min(kBlock, out - o0);
    convert_to_f32(w + o0 * in, DType::kBF16, static_cast<size_t>(n * in), cache.w_f32.data());
    gemm(false, true, rows, n, in, 1.0f, cache.x_f32.data(), in, cache.w_f32.data(), in, 0.0f,
         y + o0, out);
  }
}

}  // namespace

std::string onednn_cpu_isa() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_all:
      return "all";
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic:
      return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      break;  // a newer oneDNN's value
  }
  return "isa-" + std::to_string(static_cast<int>(dnnl_get_effective_cpu_isa()));
}

std::vector<uint16_t> to_bf16(const std::vector<float>& w) {
  std::vector<uint16_t> out(w.size());
  convert_from_f32(w.data(), w.size(), DType::kBF16, out.data());
  return out;
}

void linear_bf16(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                 float* y) {
  if (rows == 0 || out == 0) return;
  thread_local MatmulCache cache;
  cache.x_bf16.resize(static_cast<size_t>(rows * in));
  convert_from_f32(x, cache.x_bf16.size(), DType::kBF16, cache.x_bf16.data());
  if (rows <= kSkinnyMaxRows) {
    const float* x_rounded = nullptr;
    if (skinny_bf16_widens()) {
      cache.x_f32.resize(cache.x_bf16.size());
      convert_to_f32(cache.x_bf16.data(), DType::kBF16, cache.x_f32.size(), cache.x_f32.data());
      x_rounded = cache.x_f32.data();
    }
    skinny_linear_bf16(cache.x_bf16.data(), x_rounded, rows, in, w, out, y);
    return;
  }
  try {
    MatmulCache::Entry& e = cache.get(rows, in, out);
    if (e.widen || kernel_variant(KernelFamily::kGemmBf16) == kGemmWidenSgemm) {
      widen_and_multiply(cache, rows, in, w, out, y);
      return;
    }
    e.src_mem.set_data_handle(cache.x_bf16.data());
    e.weights_mem.set_data_handle(const_cast<uint16_t*>(w));
    e.dst_mem.set_data_handle(y);
    e.matmul.execute(cache.stream, e.args);
    cache.stream.wait();
  } catch (const dnnl::error& err) {
    throw Error("linear_bf16: oneDNN matmul failed (" + std::string(err.what()) +
                ", rows=" + std::to_string(rows) + ", in=" + std::to_string(in) +
                ", out=" + std::to_string(out) + ")");
  }
}

double measure_gemm_bf16_variant(int variant) {
  constexpr int64_t kRows = 128, kIn = 512, kOut = 256;
  MatmulCache cache;
  std::vector<float> x(static_cast<size_t>(kRows * kIn)), y(static_cast<size_t>(kRows * kOut));
  std::vector<uint16_t> w(static_cast<size_t>(kOut * kIn));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = f32_to_bf16(static_cast<float>(i % 5) * 0.5f - 1.0f);
  cache.x_bf16.resize(x.size());
  convert_from_f32(x.data(), x.size(), DType::kBF16, cache.x_bf16.data());
  // One thread, as the other families: a per-core rate that a loaded second core cannot skew.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  struct Restore {
    int n;
    ~Restore() { omp_set_num_threads(n); }
  } restore{threads};
  MatmulCache::Entry& e = cache.get(kRows, kIn, kOut);
  if (variant == kGemmOnednnBf16 && e.widen) return 0.0;  // no bf16 matmul on this CPU
  try {
    const auto once = [&] {
      if (variant == kGemmWidenSgemm) {
        widen_and_multiply(cache, kRows, kIn, w.data(), kOut, y.data());
        return;
      }
      e.src_mem.set_data_handle(cache.x_bf16.data());
      e.weights_mem.set_data_handle(w.data());
      e.dst_mem.set_data_handle(y.data());
      e.matmul.execute(cache.stream, e.args);
      cache.stream.wait();
    };
    once();
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
      const auto t = std::chrono::steady_clock::now();
      once();
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
    }
    return 2.0 * kRows * kIn * kOut / best * 1e-9;
  } catch (const dnnl::error&) {
    return 0.0;
  }
}

}  // namespace mla::ops
