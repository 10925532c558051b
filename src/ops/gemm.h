// Dense products, row-major: float32 through oneDNN's sgemm (the speed path), float64 through a
// plain loop (used only by the finite-difference gradient checks on tiny shapes, so that the very
// code that trains is the code checked in double). Our convention: Y = X W^T with W stored
// [out_features, in_features], as torch.nn.Linear and the checkpoints do.
#pragma once

#include <cstdint>

namespace mla::ops {

// C (M,N) = alpha * op(A) * op(B) + beta * C; op(A) is (M,K), op(B) is (K,N). beta = 0
// overwrites C without reading it (BLAS semantics), K = 0 included.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc);

// y (rows, out) = x (rows, in) * w^T, w is (out, in). Up to 8 rows take ops/skinny.h.
void linear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, float* y);

}  // namespace mla::ops
