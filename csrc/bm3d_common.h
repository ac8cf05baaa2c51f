// CBM3D shared by the CPU (bm3d_cpu.cpp) and CUDA (cuda/bm3d_cuda.cu) kernels: the profile, the
// transforms' constants and the argument checks.
//
// The algorithm is that of Dabov, Foi, Katkovnik, Egiazarian, "Image denoising by sparse 3-D
// transform-domain collaborative filtering" (IEEE TIP 2007) and, for colour, "Color image denoising
// via sparse 3D collaborative filtering with grouping constraint in luminance-chrominance space"
// (ICIP 2007), with the noise variances of Makinen, Azzari, Foi, "Collaborative filtering of
// correlated noise: exact transform-domain variance for improved shrinkage and patch matching"
// (IEEE TIP 2020), written from the papers:
//   colour  RGB -> opponent Y U V (Y = (R+G+B)/3, U = (R-B)/2, V = (R-2G+B)/4); white noise of std
//           s in RGB has std s/sqrt(3), s/sqrt(2), s*sqrt(3/8) in Y, U, V. Blocks are matched on Y
//           only; the same groups (positions) filter U and V.
//   variances  the blocks of a group may overlap, so their noise is correlated: the variance of each
//           3-D coefficient is s_c^2 * v, v = 1 + sum over overlapping pairs (a, b) of
//           2 H[j][a] H[j][b] A_k(dy) A_l(dx) (H the Haar matrix along the group, A the per-axis
//           transform's autocorrelation at the pair's offset), computed per group (TIP 2020).
//   stage 1 8x8 blocks, the paper's bior1.5 2-D transform (rows of unit norm), orthonormal Haar
//           along the group (size: the largest power of 2 <= the matches, at most 16), hard
//           threshold: keep a coefficient c when c^2 > lambda_3d^2 s_c^2 v, and always the group's
//           DC (j = 0, k = l = 0); aggregation weight 1 / sum(s_c^2 v) over the kept coefficients,
//           Kaiser window (beta 2). Matching on the luminance's bior1.5 spectra (the paper matches
//           in the stage's 2-D transform domain).
//   stage 2 matching on the stage-1 estimate's DCT spectra (= pixel distances), groups up to 32,
//           2-D DCT + Haar, empirical Wiener shrinkage w = B^2 / (B^2 + mu2 s_c^2 v) from the
//           stage-1 estimate's spectrum B (w = 1 for the group's DC), weight 1 / sum(w^2 s_c^2 v).
//           Keeping the DC whole makes the result independent of a channel's offset (the opponent
//           chroma sit around 0, where a small DC would otherwise be cut or shrunk).
//   profile (sigma on the 0-255 scale, as in the paper; the ops take it on the [0, 1] scale), at
//           every level: tau_match 3000 (stage 1, the paper's) and 1600 (stage 2; the paper's 400
//           measured 0.01-0.04 dB worse on CBSD68 crops), lambda_3d 3.0 and mu2 0.4 (the values the
//           `bm3d` package v4 uses for white noise; the paper's 2.7 and 1.0 measured 0.02-0.03 dB
//           worse at sigma 0.1 / 0.2 with the exact variances), no matching pre-filter.
//           tau_match is the paper's normalised distance ||T(Z_R) - T(Z_x)||^2 / N1^2 on the 0-255
//           scale. The paper's high-noise profile (sigma > 40: tau 5000 / 3500, lambda_3d 2.8 and
//           matching on spectra hard-thresholded at 2.0 sigma) was written for 12x12 / 11x11
//           blocks; with 8x8 blocks it measured worse at sigma 51 on CBSD68 crops, so it is kept
//           (make_profile(sigma, true)) but not used. Reference blocks every `step` pixels (the
//           last row and column always), search window `window` x `window` centred on the
//           reference (clipped at the borders).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <utility>

#include "checks.h"

#ifdef __CUDACC__
#define RK_HD __host__ __device__
#else
#define RK_HD
#endif

namespace restorekit {
namespace bm3d {

constexpr int kB = 8;          // block side N1
constexpr int kB2 = kB * kB;   // coefficients per block
constexpr int kMaxGroupHT = 16;
constexpr int kMaxGroupWiener = 32;
constexpr int kMaxGroup = 32;
constexpr double kKaiserBeta = 2.0;

struct Profile {
  float tau_ht;       // squared-distance thresholds on the [0, 1] scale, summed over a block's 64 pixels
  float tau_wiener;
  float lambda_3d;    // stage-1 hard threshold, in units of the coefficient's noise std
  float lambda_2d;    // stage-1 matching pre-filter (0: none), in units of the luminance's noise std
  float mu2;          // Wiener regularisation: w = B^2 / (B^2 + mu2 var)
  int max_group_ht;
  int max_group_wiener;
};

// The profile for noise std `sigma` on the [0, 1] scale, the same at every level (see the top of
// this file); with paper_high, the paper's high-noise profile above 40.
inline Profile make_profile(double sigma, bool paper_high = false) {
  const double s255 = sigma * 255.0;
  const bool high = paper_high && s255 > 40.0;
  const double to_unit = double(kB2) / (255.0 * 255.0);
  Profile p;
  p.tau_ht = float((high ? 5000.0 : 3000.0) * to_unit);
  p.tau_wiener = float((high ? 3500.0 : 1600.0) * to_unit);
  p.lambda_3d = high ? 2.8f : 3.0f;
  p.lambda_2d = high ? 2.0f : 0.0f;
  p.mu2 = 0.4f;
  p.max_group_ht = kMaxGroupHT;
  p.max_group_wiener = kMaxGroupWiener;
  return p;
}

// Noise std of each channel after the colour transform (gray: the std itself).
inline void channel_sigmas(double sigma, int channels, float* out) {
  if (channels == 1) {
    out[0] = float(sigma);
  } else {
    out[0] = float(sigma / std::sqrt(3.0));
    out[1] = float(sigma / std::sqrt(2.0));
    out[2] = float(sigma * std::sqrt(3.0 / 8.0));
  }
}

// Orthonormal DCT-II matrix: C[k][i] = a_k cos(pi (2i + 1) k / 16).
inline void dct_matrix(float* c) {
  const double pi = 3.14159265358979323846;
  for (int k = 0; k < kB; ++k)
    for (int i = 0; i < kB; ++i)
      c[k * kB + i] = float((k == 0 ? std::sqrt(1.0 / kB) : std::sqrt(2.0 / kB)) *
                            std::cos(pi * (2 * i + 1) * k / (2.0 * kB)));
}

// The paper's stage-1 2-D transform along one axis: the biorthogonal 1.5 wavelet analysis of 8
// samples (3 dyadic levels, periodic extension), each row scaled to unit norm so that white noise of
// std s has std s in every coefficient. Not orthogonal: blocks come back through its inverse.
inline void bior15_matrix(float* m) {
  const double a = 0.3535533905932738, b1 = 0.2194176492525008, b2 = 0.44928375799321585,
               c1 = 0.5693593983428461, c2 = 0.402347308162278, c3 = 0.08350604509028409,
               d = 0.7071067811865476;
  const double rows[kB2] = {
      a,   a,   a,   a,   a,   a,   a,   a,
      b1,  b2,  b2,  b1,  -b1, -b2, -b2, -b1,
      c1,  c2,  -c2, -c1, -c3, c3,  -c3, c3,
      -c3, c3,  -c3, c3,  c1,  c2,  -c2, -c1,
      d,   -d,  0,   0,   0,   0,   0,   0,
      0,   0,   d,   -d,  0,   0,   0,   0,
      0,   0,   0,   0,   d,   -d,  0,   0,
      0,   0,   0,   0,   0,   0,   d,   -d};
  for (int i = 0; i < kB2; ++i) m[i] = float(rows[i]);
}

// inv = m^-1 for an invertible 8x8 matrix (Gauss-Jordan with partial pivoting, in double).
inline void invert8(const float* m, float* inv) {
  double a[kB][2 * kB];
  for (int i = 0; i < kB; ++i)
    for (int j = 0; j < 2 * kB; ++j) a[i][j] = j < kB ? m[i * kB + j] : (j - kB == i ? 1.0 : 0.0);
  for (int col = 0; col < kB; ++col) {
    int piv = col;
    for (int r = col + 1; r < kB; ++r)
      if (std::fabs(a[r][col]) > std::fabs(a[piv][col])) piv = r;
    for (int j = 0; j < 2 * kB; ++j) std::swap(a[col][j], a[piv][j]);
    const double p = a[col][col];
    for (int j = 0; j < 2 * kB; ++j) a[col][j] /= p;
    for (int r = 0; r < kB; ++r) {
      if (r == col) continue;
      const double f = a[r][col];
      for (int j = 0; j < 2 * kB; ++j) a[r][j] -= f * a[col][j];
    }
  }
  for (int i = 0; i < kB; ++i)
    for (int j = 0; j < kB; ++j) inv[i * kB + j] = float(a[i][kB + j]);
}

// Modified Bessel function of the first kind, order 0 (power series).
inline double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  for (int k = 1; k < 50; ++k) {
    term *= (x / (2.0 * k)) * (x / (2.0 * k));
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

// 2-D Kaiser window (outer product of two 1-D windows of length 8, parameter beta).
inline void kaiser_window(float* w, double beta = kKaiserBeta) {
  double w1[kB];
  for (int n = 0; n < kB; ++n) {
    const double r = 2.0 * n / (kB - 1) - 1.0;
    w1[n] = bessel_i0(beta * std::sqrt(1.0 - r * r)) / bessel_i0(beta);
  }
  for (int i = 0; i < kB; ++i)
    for (int j = 0; j < kB; ++j) w[i * kB + j] = float(w1[i] * w1[j]);
}

// Autocorrelation of each row of a per-axis transform m at each lag: acorr[d * 8 + k] =
// sum_i m[k][i] m[k][i + d], d in [0, 8) (symmetric in d). The covariance of coefficient (k, l) of
// two blocks offset by (dy, dx) under white noise of variance 1 is acorr[|dy|][k] * acorr[|dx|][l].
inline void autocorrelation(const float* m, float* acorr) {
  for (int d = 0; d < kB; ++d)
    for (int k = 0; k < kB; ++k) {
      double a = 0.0;
      for (int i = 0; i + d < kB; ++i) a += double(m[k * kB + i]) * m[k * kB + i + d];
      acorr[d * kB + k] = float(a);
    }
}

// The orthonormal Haar matrices along a group, n = 1, 2, 4, ..., kMaxGroup: haar[haar_offset(n) +
// j * n + a] is the weight of block a in coefficient j (the full dyadic decomposition of
// haar_forward: averages first, then the differences of each level).
constexpr int kHaarTableSize = 1 + 4 + 16 + 64 + 256 + 1024;
RK_HD inline int haar_offset(int n) {
  int off = 0;
  for (int m = 1; m < n; m *= 2) off += m * m;
  return off;
}

inline void haar_matrices(float* haar) {
  const double r = 1.0 / std::sqrt(2.0);
  for (int n = 1; n <= kMaxGroup; n *= 2) {
    for (int a = 0; a < n; ++a) {
      double v[kMaxGroup] = {0}, t[kMaxGroup];
      v[a] = 1.0;
      for (int len = n; len > 1; len /= 2) {
        const int half = len / 2;
        for (int i = 0; i < half; ++i) {
          t[i] = (v[2 * i] + v[2 * i + 1]) * r;
          t[half + i] = (v[2 * i] - v[2 * i + 1]) * r;
        }
        for (int i = 0; i < len; ++i) v[i] = t[i];
      }
      for (int j = 0; j < n; ++j) haar[haar_offset(n) + j * n + a] = float(v[j]);
    }
  }
}

// Positions of the reference blocks along one axis of length n (>= kB): 0, step, 2 step, ... and
// always the last position n - kB, so every pixel is covered.
inline int reference_positions(int n, int step, int* out) {
  const int last = n - kB;
  int count = 0;
  for (int p = 0; p <= last; p += step) out[count++] = p;
  if (out[count - 1] != last) out[count++] = last;
  return count;
}

inline int largest_power_of_two(int n) {
  int p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

}  // namespace bm3d

// x: (N, C, H, W) with C 1 or 3 and H, W >= 8, float32 or float64; sigma finite >= 0 ([0, 1]
// scale); window odd >= 1; step in [1, 8]. Values are not checked (the Python wrapper refuses
// non-finite images); a NaN makes its blocks' distances NaN, which never match.
inline void check_bm3d_args(const char* op, const at::Tensor& x, double sigma, int64_t window, int64_t step) {
  auto args = [&] { return ArgList().add("x", x).str(); };
  TORCH_CHECK(x.defined(), "restorekit::", op, ": x is required");
  TORCH_CHECK(x.layout() == at::kStrided, "restorekit::", op, ": only dense (strided) tensors; got ", args());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "restorekit::", op,
              ": dtype must be float32 or float64 (computed in float32); got ", args());
  TORCH_CHECK(x.dim() == 4, "restorekit::", op, ": x must be 4-D (N, C, H, W); got ", args());
  TORCH_CHECK(x.size(1) == 1 || x.size(1) == 3, "restorekit::", op,
              ": x must have 1 (gray) or 3 (RGB) channels; got ", args());
  TORCH_CHECK(x.size(2) >= bm3d::kB && x.size(3) >= bm3d::kB, "restorekit::", op,
              ": height and width must be at least the block size ", bm3d::kB, "; got ", args());
  TORCH_CHECK(x.size(2) <= (1 << 15) && x.size(3) <= (1 << 15) && x.size(2) * x.size(3) <= (int64_t(1) << 26),
              "restorekit::", op, ": image too large (at most 32768 pixels a side and 2**26 pixels; the "
              "block spectra take 256 bytes a pixel and channel); tile it; got ", args());
  TORCH_CHECK(std::isfinite(sigma) && sigma >= 0.0, "restorekit::", op,
              ": sigma must be a finite number >= 0 on the [0, 1] scale; got ", sigma);
  TORCH_CHECK(window >= 1 && window % 2 == 1 && window <= 255, "restorekit::", op,
              ": window must be odd, in [1, 255]; got ", window);
  TORCH_CHECK(step >= 1 && step <= bm3d::kB, "restorekit::", op, ": step must be in [1, ", bm3d::kB, "]; got ", step);
}

}  // namespace restorekit
