// The AMX-BF16 skinny kernel (ops/simd/skinny_amx_common.inc): run on the software tile model
// everywhere, and on the tiles themselves where the CPU has usable AMX (skipped, saying why,
// elsewhere: no machine the project has tested on has AMX). Over every edge (1..8 rows, inputs
// not a multiple of 32, outputs not a multiple of 16, output ranges not starting at 0, x off
// its cache line) it equals a double-precision reference of the same bf16 products and the
// existing skinny bf16 kernels within float32 rounding, and linear_bf16 routed through it
// (packing, output blocks, threads) equals the reference too.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mla/dtype.h"
#include "ops/cpu_features.h"
#include "ops/linear_bf16.h"
#include "ops/simd/amx_tile_model.h"
#include "ops/simd/skinny_kernels.h"
#include "ops/skinny.h"
#include "test_util.h"

namespace mla {
namespace {

using Kernel = void (*)(const uint16_t*, int64_t, int64_t, const uint16_t*, int64_t, int64_t,
                        float*, int64_t);

std::vector<uint16_t> bf16_of(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  convert_from_f32(v.data(), v.size(), DType::kBF16, out.data());
  return out;
}

std::vector<float> f32_of(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  convert_to_f32(v.data(), DType::kBF16, out.size(), out.data());
  return out;
}

struct Problem {
  int64_t rows, in, out, o0, o1;
  std::vector<uint16_t> x_storage, w;  // x starts one number into its storage: off the line
  std::vector<float> xf, wf;
  const uint16_t* x() const { return x_storage.data() + 1; }

  Problem(int64_t rows_, int64_t in_, int64_t out_, int64_t o0_, int64_t o1_)
      : rows(rows_), in(in_), out(out_), o0(o0_), o1(o1_) {
    x_storage = bf16_of(test::random_normal(static_cast<size_t>(rows * in + 1), 3 + rows));
    w = bf16_of(test::random_normal(static_cast<size_t>(out * in), 5 + in));
    xf = f32_of(std::vector<uint16_t>(x_storage.begin() + 1, x_storage.end()));
    wf = f32_of(w);
  }
  std::string name() const {
    return "rows " + std::to_string(rows) + ", in " + std::to_string(in) + ", out " +
           std::to_string(out) + ", outputs [" + std::to_string(o0) + ", " + std::to_string(o1) +
           ")";
  }
};

// y from the AMX kernel (outputs outside [o0, o1) keep their sentinel).
std::vector<float> run_amx(const Problem& p, Kernel kernel) {
  std::vector<uint16_t> pairs(static_cast<size_t>(ops::simd::amx_pairs_size(p.rows, p.in)));
  ops::simd::pack_amx_pairs(p.x(), p.rows, p.in, pairs.data());
  std::vector<float> y(static_cast<size_t>(p.rows * p.out), -7.0f);
  kernel(pairs.data(), p.rows, p.in, p.w.data(), p.o0, p.o1, y.data(), p.out);
  return y;
}

// The same outputs from the portable widening kernel (every CPU) and VDPBF16PS (where present).
std::vector<float> run_existing(const Problem& p, bool dot) {
  std::vector<float> y(static_cast<size_t>(p.rows * p.out), -7.0f);
  if (dot) {
    std::vector<uint16_t> x(p.x(), p.x() + p.rows * p.in);
    ops::simd::skinny_bf16_dot_avx512bf16(x.data(), p.rows, p.in, p.w.data(), p.o0, p.o1, y.data(),
                                          p.out);
  } else {
    ops::simd::skinny_bf16_widen_scalar(p.xf.data(), p.rows, p.in, p.w.data(), p.o0, p.o1, y.data(),
                                        p.out);
  }
  return y;
}

// Against sum_k x w in double, relative to sum_k |x w|; against another kernel within twice that.
void expect_matches(const Problem& p, const std::vector<float>& y,
                    const std::vector<std::vector<float>>& others, const char* what) {
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t o = 0; o < p.out; ++o) {
      const size_t i = static_cast<size_t>(r * p.out + o);
      if (o < p.o0 || o >= p.o1) {
        ASSERT_EQ(y[i], -7.0f) << what << ": wrote output " << o << " outside; " << p.name();
        continue;
      }
      double sum = 0, scale = 0;
      for (int64_t k = 0; k < p.in; ++k) {
        const double prod = static_cast<double>(p.xf[r * p.in + k]) * p.wf[o * p.in + k];
        sum += prod;
        scale += std::abs(prod);
      }
      ASSERT_NEAR(y[i], sum, 2e-6 * scale + 1e-30)
          << what << ": row " << r << ", output " << o << "; " << p.name();
      for (const std::vector<float>& other : others)
        ASSERT_NEAR(y[i], other[i], 4e-6 * scale + 1e-30)
            << what << " against an existing kernel: row " << r << ", output " << o << "; "
            << p.name();
    }
  }
}

void check_kernel(Kernel kernel, const char* what) {
  const bool dot = ops::supported_simd_level() >= ops::SimdLevel::kAvx512Bf16;
  for (int64_t rows = 1; rows <= ops::kSkinnyMaxRows; ++rows) {
    for (int64_t in : {5, 32, 33, 100, 515}) {
      for (int64_t out : {1, 16, 17, 49, 100}) {
        for (int64_t o0 : {int64_t{0}, out / 3}) {
          const Problem p(rows, in, out, o0, out);
          std::vector<std::vector<float>> others = {run_existing(p, false)};
          if (dot) others.push_back(run_existing(p, true));
          expect_matches(p, run_amx(p, kernel), others, what);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(SkinnyAmx, ModelKernelMatchesTheReferenceAndTheOtherKernels) {
  check_kernel(ops::simd::skinny_bf16_amx_model, "AMX kernel on the tile model");
}

// Bit for bit what the tile model's TDPBF16PS gives when each output accumulates one 32-input
// tile after another from zero: the kernel's layout (pairs, tiles, transposition) is exactly
// the products it claims, not merely close to them.
TEST(SkinnyAmx, ModelKernelIsTheSdmSumTileByTile) {
  for (int64_t rows : {1, 5, 8}) {
    const Problem p(rows, 77, 35, 2, 35);
    const std::vector<float> y = run_amx(p, ops::simd::skinny_bf16_amx_model);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = p.o0; o < p.o1; ++o) {
        float acc = 0.0f;
        for (int64_t k = 0; k < p.in; k += 32) {
          uint16_t a[32] = {}, b[32] = {};  // the last tile zero-padded, as the kernel pads
          for (int64_t j = 0; j < 32 && k + j < p.in; ++j) {
            a[j] = p.w[o * p.in + k + j];
            b[j] = p.x()[r * p.in + k + j];
          }
          acc = ops::simd::amx_dpbf16_model(acc, a, b, 16);
        }
        ASSERT_EQ(y[r * p.out + o], acc) << "row " << r << ", output " << o << "; " << p.name();
      }
    }
  }
}

TEST(SkinnyAmx, HardwareKernelMatchesTheReferenceAndTheModel) {
  const ops::CpuFeatures& f = ops::cpu_features();
  if (!f.amx_usable) GTEST_SKIP() << "no usable AMX-BF16 on this CPU (amx: " << f.amx_status << ")";
  check_kernel(ops::simd::skinny_bf16_amx, "AMX kernel on the tiles");
  // The tiles and their model run the same instructions on the same data: equal within rounding
  // (bit for bit, if the hardware sums as the SDM says).
  const Problem p(8, 515, 100, 0, 100);
  const std::vector<float> hw = run_amx(p, ops::simd::skinny_bf16_amx);
  const std::vector<float> model = run_amx(p, ops::simd::skinny_bf16_amx_model);
  int64_t differ = 0;
  for (size_t i = 0; i < hw.size(); ++i) differ += hw[i] != model[i];
  // Which summation order the silicon follows is unverified (amx_tile_model.h): say it.
  std::printf("[   info   ] %lld of %zu outputs of the AMX tiles differ from the SDM model\n",
              static_cast<long long>(differ), hw.size());
  expect_matches(p, hw, {model}, "AMX tiles against their model");
}

// linear_bf16 (up to 8 rows: the skinny path) routed through the AMX kernel on the model: the
// route's packing, 48-output blocks and threads, on any CPU.
TEST(SkinnyAmx, LinearBf16RoutedThroughTheModelMatchesTheReference) {
  ops::route_skinny_bf16_through_amx_model(true);
  EXPECT_FALSE(ops::skinny_bf16_widens());
  for (int64_t rows : {1, 3, 8}) {
    for (int64_t in : {7, 64, 300}) {
      for (int64_t out : {5, 48, 130}) {
        Problem p(rows, in, out, 0, out);
        std::vector<float> y(static_cast<size_t>(rows * out), -7.0f);
        ops::linear_bf16(p.xf.data(), rows, in, p.w.data(), out, y.data());
        expect_matches(p, y, {run_existing(p, false)}, "linear_bf16 through the AMX route");
      }
    }
  }
  ops::route_skinny_bf16_through_amx_model(false);
}

// The weights end where an unreadable page begins: a tile load past the last output's row or
// past the last input (instead of the zero-padded copy) would fault.
TEST(SkinnyAmx, NeverReadsPastTheWeights) {
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (int64_t in : {33, 50}) {
    for (int64_t out : {16, 17}) {  // the last tile full (its last inputs a tail), or an edge
      const Problem p(3, in, out, 0, out);
      const size_t bytes = p.w.size() * sizeof(uint16_t);
      const size_t span = (bytes + page - 1) / page * page;
      void* region =
          mmap(nullptr, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      ASSERT_NE(region, MAP_FAILED);
      auto* base = static_cast<unsigned char*>(region);
      ASSERT_EQ(mprotect(base + span, page, PROT_NONE), 0);
      auto* w = reinterpret_cast<uint16_t*>(base + span - bytes);
      std::memcpy(w, p.w.data(), bytes);
      std::vector<uint16_t> pairs(static_cast<size_t>(ops::simd::amx_pairs_size(p.rows, in)));
      ops::simd::pack_amx_pairs(p.x(), p.rows, in, pairs.data());
      std::vector<float> y(static_cast<size_t>(p.rows * p.out), -7.0f);
      ops::simd::skinny_bf16_amx_model(pairs.data(), p.rows, in, w, 0, p.out, y.data(), p.out);
      munmap(region, span + page);
      expect_matches(p, y, {run_existing(p, false)}, "AMX kernel, weights before a guard page");
    }
  }
}

TEST(SkinnyAmx, PairsAreXInVnniOrderZeroPadded) {
  const std::vector<uint16_t> x = {1, 2, 3, 4, 5, 11, 12, 13, 14, 15};  // 2 rows of 5
  ASSERT_EQ(ops::simd::amx_pairs_size(2, 5), 64);
  std::vector<uint16_t> pairs(64, 99);
  ops::simd::pack_amx_pairs(x.data(), 2, 5, pairs.data());
  const std::vector<uint16_t> head = {1, 2, 11, 12, 3, 4, 13, 14, 5, 0, 15, 0, 0, 0, 0, 0};
  EXPECT_EQ(std::vector<uint16_t>(pairs.begin(), pairs.begin() + 16), head);
  for (size_t i = 16; i < pairs.size(); ++i) EXPECT_EQ(pairs[i], 0) << i;
}

}  // namespace
}  // namespace mla
