// How a strided row-major matrix is handed to a column-major BLAS (CPU BLAS and cuBLAS alike).
//
// We compute row-major C (n x m) = A (n x k) @ B (k x m). Column-major BLAS sees a row-major
// buffer as its transpose, so we ask it for C^T = B^T A^T (ldc = row stride of C):
//   gemm(opB, opA, m, n, k, B, ldb, A, lda, C, ldc)
// A matrix X (r x c) with strides (s0, 1) is, read column-major, X^T with leading dimension s0
// (no transpose needed to get X^T); with strides (1, s1) it is X itself with leading dimension s1
// (transpose needed). Any other layout must be copied first.
//
// The CPU kernels use this for every product, so the CPU tests exercise the layout logic the CUDA
// kernels share.
#pragma once

#include <algorithm>
#include <cstdint>

namespace restorekit {

struct BlasOperand {
  bool trans;  // whether BLAS must transpose the stored matrix to get X^T
  int64_t ld;  // leading dimension of the stored matrix
};

// X^T for a column-major BLAS, for X (r x c) with strides (s0, s1). False: X needs a contiguous copy.
inline bool transposed_operand(int64_t r, int64_t c, int64_t s0, int64_t s1, BlasOperand& out) {
  // stored as c x r column-major (ld >= c): row-major X, unit column stride
  if (s1 == 1 && (r <= 1 || s0 >= std::max<int64_t>(c, 1))) {
    out = {false, r <= 1 ? std::max<int64_t>(c, 1) : s0};
    return true;
  }
  // stored as r x c column-major (ld >= r): X^T is row-major, unit row stride
  if (s0 == 1 && (c <= 1 || s1 >= std::max<int64_t>(r, 1))) {
    out = {true, c <= 1 ? std::max<int64_t>(r, 1) : s1};
    return true;
  }
  return false;
}

}  // namespace restorekit
