#include "ops/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "mla/error.h"
#include "ops/parallel.h"
#include "ops/skinny.h"

namespace mla::ops {
namespace {

// C = beta C without reading C when beta is 0, for K = 0 products (oneDNN's k = 0 is not ours).
void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
  }
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_c(m, n, beta, c, ldc);
  // oneDNN forks per call: small products run on this thread (ops/parallel.h).
  const SerialScope serial(!worth_parallel(static_cast<double>(m) * n * k));
  dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                    lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success) {
    throw Error("gemm: oneDNN sgemm failed with status " +
                std::to_string(static_cast<int>(status)) + " (m=" + std::to_string(m) +
                ", n=" + std::to_string(n) + ", k=" + std::to_string(k) + ")");
  }
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += av * bv;
      }
      c[i * ldc + j] = alpha * sum + (beta == 0.0 ? 0.0 : beta * c[i * ldc + j]);
    }
  }
}

void linear(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, float* y) {
  if (rows <= kSkinnyMaxRows) {  // decode: oneDNN's sgemm is far from memory speed here
    if (rows > 0) skinny_linear(x, rows, in, w, out, y);
    return;
  }
  gemm(false, true, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

}  // namespace mla::ops
