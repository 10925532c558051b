// Dense products for the training code, in float32 (oneDNN sgemm, the speed path) or float64 (a
// plain loop, used only by the gradient checks on tiny shapes). The training ops are templates on
// the element type T so that the very code that trains is the code checked against finite
// differences in double precision. Convention as ops::gemm: row-major, C (M,N) = alpha op(A)
// op(B) + beta C, op(A) (M,K), op(B) (K,N); beta = 0 overwrites C without reading it.
#pragma once

#include <cstdint>

namespace mla::train {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc);

}  // namespace mla::train
