// How a strided row-major matrix is handed to a column-major BLAS (CPU BLAS and cuBLAS alike).
//
// We compute row-major C (n x m) = A (n x k) @ B (k x m). Column-major BLAS sees a row-major
// buffer as its transpose, so we ask it for C^T = B^T A^T (ldc = row stride of C):
//   gemm(opB, opA, m, n, k, B, ldb, A, lda, C, ldc)
// A matrix X (r x c) with strides (s0, 1) is, read column-major, X^T with leading dimension s0
// (no transpose needed to get X^T); with strides (1, s1) it is X itself with leading dimension s1
// (transpose needed). Any other layout must be copied first.
//
// The stride of a dimension of size 0 or 1 never addresses memory, and torch leaves it arbitrary:
// a (1, 1) slice of a strided view keeps strides such as (6, 2), and .contiguous() returns it
// unchanged because it is contiguous in torch's sense. Such strides are ignored here, so every
// tensor that torch calls contiguous is accepted as it is.
//
// BLAS takes 32-bit sizes and leading dimensions: a leading dimension above kBlasIntMax is
// rejected (the caller copies the matrix, whose leading dimension then is a size); sizes above it
// are refused earlier, with a message, by the argument checks (checks.h).
//
// The CPU kernels use this for every product, so the CPU tests exercise the layout logic the CUDA
// kernels share.
#pragma once

#include <algorithm>
#include <cstdint>

namespace restorekit {

constexpr int64_t kBlasIntMax = 2147483647;  // INT_MAX: the largest size or leading dimension BLAS takes

struct BlasOperand {
  bool trans;  // whether BLAS must transpose the stored matrix to get X^T
  int64_t ld;  // leading dimension of the stored matrix
};

// X^T for a column-major BLAS, for X (r x c) with strides (s0, s1). False: X needs a copy.
inline bool transposed_operand(int64_t r, int64_t c, int64_t s0, int64_t s1, BlasOperand& out) {
  const bool one_row = r <= 1, one_col = c <= 1;  // then s0, resp. s1, is never used
  // stored as c x r column-major (ld >= c): row-major X, unit column stride
  if ((one_col || s1 == 1) && (one_row || s0 >= std::max<int64_t>(c, 1))) {
    const int64_t ld = one_row ? std::max<int64_t>(c, 1) : s0;
    if (ld > kBlasIntMax) return false;
    out = {false, ld};
    return true;
  }
  // stored as r x c column-major (ld >= r): X^T is row-major, unit row stride
  if ((one_row || s0 == 1) && (one_col || s1 >= std::max<int64_t>(r, 1))) {
    const int64_t ld = one_col ? std::max<int64_t>(r, 1) : s1;
    if (ld > kBlasIntMax) return false;
    out = {true, ld};
    return true;
  }
  return false;
}

}  // namespace restorekit
