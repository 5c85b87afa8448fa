// SPDX-License-Identifier: MIT
// Naive long-double GEMM reference for the simd::gemm engine, with an error scale per entry.
#ifndef XFMR_TESTS_REFERENCE_GEMM_HPP
#define XFMR_TESTS_REFERENCE_GEMM_HPP

#include <cmath>
#include <cstddef>
#include <vector>

namespace xfmr_ref {

/// out[i·n + j] = α·Σ_p A(i,p)·op(B)(p,j) + β·C(i,j) (β == 0: C ignored), and
/// scale[i·n + j] = |α|·Σ_p |A(i,p)·op(B)(p,j)| + |β·C(i,j)|, the magnitude the rounding error
/// of any summation order is bounded against. A(i,p) = a[i·rsa + p·csa];
/// trans_b: op(B)(p,j) = b[j·ldb + p], else b[p·ldb + j].
template <typename T>
void gemm(long m, long n, long k, double alpha, const T* a, long rsa, long csa, bool trans_b,
          const T* b, long ldb, double beta, const T* c, long ldc, std::vector<long double>& out,
          std::vector<long double>& scale) {
  out.assign(static_cast<std::size_t>(m * n), 0.0L);
  scale.assign(static_cast<std::size_t>(m * n), 0.0L);
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < n; ++j) {
      long double s = 0, sa = 0;
      for (long p = 0; p < k; ++p) {
        const long double x = static_cast<long double>(a[i * rsa + p * csa]) *
                              static_cast<long double>(trans_b ? b[j * ldb + p] : b[p * ldb + j]);
        s += x;
        sa += std::fabs(x);
      }
      long double v = static_cast<long double>(alpha) * s;
      long double e = std::fabs(static_cast<long double>(alpha)) * sa;
      if (beta != 0.0) {
        const long double cv = static_cast<long double>(beta) * c[i * ldc + j];
        v += cv;
        e += std::fabs(cv);
      }
      out[static_cast<std::size_t>(i * n + j)] = v;
      scale[static_cast<std::size_t>(i * n + j)] = e;
    }
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_GEMM_HPP
