// CUDA kernel of restorekit::bm3d: CBM3D (colour) and BM3D (gray), both stages.
//
// The same algorithm, profile and block order as the CPU kernel (bm3d_cpu.cpp; profile in
// bm3d_common.h), laid out for a GPU:
//   spectra_kernel  one thread per (channel, block position): the block's 8x8 spectrum (bior1.5
//                   for stage 1, which also matches on the luminance's, the DCT for stage 2),
//                   64 contiguous floats per position;
//   stage_kernel    one thread block of 64 threads per reference block. Block matching: the
//                   threads compute the distances of 64 candidates at a time (in the CPU kernel's
//                   scan order) and thread 0 merges them into the sorted list of best matches, so
//                   the groups are the CPU kernel's (up to floating-point rounding of distances).
//                   Filtering: thread t owns coefficient t of every block of the group (the Haar
//                   transform along the group runs in registers) and computes its coefficients'
//                   noise variances from the group's overlapping pairs (bm3d_common.h), the group's
//                   statistics (kept variance, Wiener norm) are a block reduction, then thread (r, q) inverts pixel
//                   (r, q) of every block and adds it to the estimate with atomicAdd (so the sums'
//                   order, and the last bits of the result, can vary from run to run).
// The colour transform, the pre-filter and the final division are ATen operations on the device.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <math_constants.h>
#include <torch/library.h>

#include <vector>

#include "../bm3d_common.h"

namespace restorekit {
namespace {

using namespace bm3d;

struct Tables {
  float dct[kB2], dct_inv[kB2];    // per-axis transforms (rows: basis) and their inverses
  float bior[kB2], bior_inv[kB2];
  float dct_acorr[kB2], bior_acorr[kB2];
  float kaiser[kB2];
  float haar[kHaarTableSize];
};

struct Matrix {
  float m[kB2];
};

// One thread per (channel, position): out[c][pos][64] = T P T^T of the block P at pos.
__global__ void spectra_kernel(const float* __restrict__ img, int C, int h, int w, Matrix T,
                               float* __restrict__ out) {
  const int hp = h - kB + 1, wp = w - kB + 1;
  const long long positions = (long long)hp * wp;
  const long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (id >= positions * C) return;
  const int c = int(id / positions);
  const long long pos = id % positions;
  const int y = int(pos / wp), x = int(pos % wp);
  const float* p = img + ((long long)c * h + y) * w + x;
  float v[kB2];  // v[k][j]: vertical DCT of column j
  for (int k = 0; k < kB; ++k)
    for (int j = 0; j < kB; ++j) {
      float s = 0.f;
      for (int i = 0; i < kB; ++i) s += T.m[k * kB + i] * p[(long long)i * w + j];
      v[k * kB + j] = s;
    }
  float* o = out + ((long long)c * positions + pos) * kB2;
  for (int k = 0; k < kB; ++k)
    for (int l = 0; l < kB; ++l) {
      float s = 0.f;
      for (int j = 0; j < kB; ++j) s += T.m[l * kB + j] * v[k * kB + j];
      o[k * kB + l] = s;
    }
}

struct StageArgs {
  const float* noisy;  // (C, hp * wp, 64)
  const float* basic;  // same, stage-1 estimate (stage 2 only)
  const float* key;    // (hp * wp, 64), matched spectra
  const int* rows;
  const int* cols;
  float* num;          // (C, h, w)
  float* den;
  int nr, nc, C, h, w, hp, wp, half, max_n;
  float tau, lambda_3d, mu2;
  float sig[3];
  bool wiener;
  Matrix inv;          // inverse of the per-axis transform of `noisy`
  Matrix acorr;        // that transform's autocorrelation (autocorrelation())
  Matrix kaiser;
  const float* haar;   // haar_matrices(), on the device
};

__device__ void haar_forward(float* g, int n, float* tmp) {
  const float r = 0.70710678118654752f;
  for (int len = n; len > 1; len /= 2) {
    const int half = len / 2;
    for (int i = 0; i < half; ++i) {
      tmp[i] = (g[2 * i] + g[2 * i + 1]) * r;
      tmp[half + i] = (g[2 * i] - g[2 * i + 1]) * r;
    }
    for (int i = 0; i < len; ++i) g[i] = tmp[i];
  }
}

__device__ void haar_inverse(float* g, int n, float* tmp) {
  const float r = 0.70710678118654752f;
  for (int len = 2; len <= n; len *= 2) {
    const int half = len / 2;
    for (int i = 0; i < half; ++i) {
      tmp[2 * i] = (g[i] + g[half + i]) * r;
      tmp[2 * i + 1] = (g[i] - g[half + i]) * r;
    }
    for (int i = 0; i < len; ++i) g[i] = tmp[i];
  }
}

// 64 threads per block, one block per reference block.
__global__ void __launch_bounds__(kB2) stage_kernel(StageArgs a) {
  __shared__ float s_ref[kB2];
  __shared__ float s_chunk[kB2];
  __shared__ float s_red[kB2];
  __shared__ float s_bd[kMaxGroup];
  __shared__ int s_bp[kMaxGroup];
  __shared__ int s_count;
  __shared__ float s_grp[kMaxGroup * kB2];

  const int t = threadIdx.x;
  const int ri = blockIdx.x / a.nc, ci = blockIdx.x % a.nc;
  const int ry = a.rows[ri], rx = a.cols[ci];
  const int ref = ry * a.wp + rx;
  s_ref[t] = a.key[(long long)ref * kB2 + t];
  if (t == 0) {
    s_bd[0] = 0.f;
    s_bp[0] = ref;
    s_count = 1;
  }
  __syncthreads();

  // ---- block matching, in the CPU kernel's scan order
  const int y0 = max(0, ry - a.half), y1 = min(a.hp - 1, ry + a.half);
  const int x0 = max(0, rx - a.half), x1 = min(a.wp - 1, rx + a.half);
  const int ww = x1 - x0 + 1;
  const int total = (y1 - y0 + 1) * ww;
  for (int base = 0; base < total; base += kB2) {
    const int idx = base + t;
    float d = CUDART_INF_F;
    if (idx < total) {
      const int pos = (y0 + idx / ww) * a.wp + x0 + idx % ww;
      if (pos != ref) {
        const float* kc = a.key + (long long)pos * kB2;
        float sum = 0.f;
        for (int c0 = 0; c0 < kB2; c0 += 16) {
          float s = 0.f;
          for (int i = 0; i < 16; ++i) {
            const float dd = s_ref[c0 + i] - kc[c0 + i];
            s += dd * dd;
          }
          sum += s;
        }
        d = sum;
      }
    }
    s_chunk[t] = d;
    __syncthreads();
    if (t == 0) {
      int count = s_count;
      const int m = min(kB2, total - base);
      for (int j = 0; j < m; ++j) {
        const float dj = s_chunk[j];
        const float limit = count < a.max_n ? a.tau : s_bd[count - 1];
        if (!(dj < limit) && !(count < a.max_n && dj <= a.tau)) continue;
        const int jdx = base + j;
        const int pos = (y0 + jdx / ww) * a.wp + x0 + jdx % ww;
        int i = count < a.max_n ? count++ : count - 1;
        while (i > 1 && s_bd[i - 1] > dj) {
          s_bd[i] = s_bd[i - 1];
          s_bp[i] = s_bp[i - 1];
          --i;
        }
        s_bd[i] = dj;
        s_bp[i] = pos;
      }
      s_count = count;
    }
    __syncthreads();
  }
  const int count = s_count;
  int n = 1;
  while (n * 2 <= count) n *= 2;

  // ---- noise variance of coefficient t of each Haar coefficient j (units of the channel's):
  // 1 + sum over overlapping pairs a < b of 2 H[j][a] H[j][b] acorr[|dy|][k] acorr[|dx|][l]
  float var[kMaxGroup];
  {
    const int k = t / kB, l = t % kB;
    const float* H = a.haar + haar_offset(n);
    for (int j = 0; j < n; ++j) var[j] = 1.f;
    for (int p = 0; p < n; ++p) {
      const int py = s_bp[p] / a.wp, px = s_bp[p] % a.wp;
      for (int b = p + 1; b < n; ++b) {
        const int dy = abs(s_bp[b] / a.wp - py), dx = abs(s_bp[b] % a.wp - px);
        if (dy >= kB || dx >= kB) continue;
        const float cov = 2.f * a.acorr.m[dy * kB + k] * a.acorr.m[dx * kB + l];
        for (int j = 0; j < n; ++j) var[j] += H[j * n + p] * H[j * n + b] * cov;
      }
    }
  }

  // ---- collaborative filtering, channel by channel
  const long long plane = (long long)a.hp * a.wp * kB2;
  const int r = t / kB, q = t % kB;
  float g[kMaxGroup], gb[kMaxGroup], tmp[kMaxGroup];
  for (int c = 0; c < a.C; ++c) {
    const float* spec = a.noisy + c * plane;
    for (int i = 0; i < n; ++i) g[i] = spec[(long long)s_bp[i] * kB2 + t];
    haar_forward(g, n, tmp);
    const float s = a.sig[c];
    float local = 0.f;
    const float s2 = s * s;
    if (!a.wiener) {  // keep c when c^2 > lambda^2 s^2 v; the group's DC (t = 0, i = 0) always
      const float thr2 = a.lambda_3d * a.lambda_3d * s2;
      for (int i = 0; i < n; ++i) {
        const bool keep = g[i] * g[i] > thr2 * var[i] || (t == 0 && i == 0);
        g[i] = keep ? g[i] : 0.f;
        local += keep ? var[i] : 0.f;
      }
    } else {
      const float* bspec = a.basic + c * plane;
      for (int i = 0; i < n; ++i) gb[i] = bspec[(long long)s_bp[i] * kB2 + t];
      haar_forward(gb, n, tmp);
      for (int i = 0; i < n; ++i) {
        const float b2 = gb[i] * gb[i];
        const float wt = (t == 0 && i == 0) ? 1.f : b2 / (b2 + a.mu2 * s2 * var[i]);
        g[i] *= wt;
        local += wt * wt * var[i];
      }
    }
    s_red[t] = local;
    __syncthreads();
    for (int stride = kB2 / 2; stride > 0; stride /= 2) {
      if (t < stride) s_red[t] += s_red[t + stride];
      __syncthreads();
    }
    const float stat = s_red[0];  // > 0: the DC's variance is in it
    const float weight = 1.f / (s2 * stat);
    haar_inverse(g, n, tmp);
    for (int i = 0; i < n; ++i) s_grp[i * kB2 + t] = g[i];
    __syncthreads();
    const float kw = weight * a.kaiser.m[t];
    for (int i = 0; i < n; ++i) {
      const float* X = s_grp + i * kB2;
      float p = 0.f;
      for (int k = 0; k < kB; ++k) {
        float row = 0.f;
        for (int l = 0; l < kB; ++l) row += X[k * kB + l] * a.inv.m[q * kB + l];
        p += a.inv.m[r * kB + k] * row;
      }
      const int by = s_bp[i] / a.wp, bx = s_bp[i] % a.wp;
      const long long o = ((long long)c * a.h + by + r) * a.w + bx + q;
      atomicAdd(a.num + o, kw * p);
      atomicAdd(a.den + o, kw);
    }
    __syncthreads();  // s_grp and s_red are reused by the next channel
  }
}

Tables make_tables() {
  Tables tab;
  dct_matrix(tab.dct);
  invert8(tab.dct, tab.dct_inv);
  bior15_matrix(tab.bior);
  invert8(tab.bior, tab.bior_inv);
  autocorrelation(tab.dct, tab.dct_acorr);
  autocorrelation(tab.bior, tab.bior_acorr);
  kaiser_window(tab.kaiser);
  haar_matrices(tab.haar);
  return tab;
}

Matrix matrix(const float* m) {
  Matrix out;
  for (int i = 0; i < kB2; ++i) out.m[i] = m[i];
  return out;
}

at::Tensor spectra(const at::Tensor& img, const float* T) {
  const int C = int(img.size(0)), h = int(img.size(1)), w = int(img.size(2));
  const long long positions = (long long)(h - kB + 1) * (w - kB + 1);
  at::Tensor out = at::empty({C, positions, kB2}, img.options());
  const long long total = positions * C;
  const int threads = 128;
  const long long blocks = (total + threads - 1) / threads;
  spectra_kernel<<<unsigned(blocks), threads, 0, at::cuda::getCurrentCUDAStream()>>>(
      img.data_ptr<float>(), C, h, w, matrix(T), out.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor run_stage(bool wiener, const at::Tensor& noisy, const at::Tensor* basic, const at::Tensor& key,
                     const float* inv, const float* acorr, int C, int h, int w, const float* sig,
                     const Profile& prof, int window, int step, const Tables& tab) {
  std::vector<int> rows(h), cols(w);
  const int nr = reference_positions(h, step, rows.data());
  const int nc = reference_positions(w, step, cols.data());
  auto int_opts = at::TensorOptions().dtype(at::kInt);
  at::Tensor drows = at::from_blob(rows.data(), {nr}, int_opts).to(noisy.device());
  at::Tensor dcols = at::from_blob(cols.data(), {nc}, int_opts).to(noisy.device());
  at::Tensor dhaar = at::from_blob(const_cast<float*>(tab.haar), {kHaarTableSize}, at::TensorOptions().dtype(at::kFloat))
                         .to(noisy.device());
  at::Tensor num = at::zeros({C, h, w}, noisy.options());
  at::Tensor den = at::zeros({C, h, w}, noisy.options());
  StageArgs a;
  a.noisy = noisy.data_ptr<float>();
  a.basic = basic ? basic->data_ptr<float>() : nullptr;
  a.key = key.data_ptr<float>();
  a.rows = drows.data_ptr<int>();
  a.cols = dcols.data_ptr<int>();
  a.num = num.data_ptr<float>();
  a.den = den.data_ptr<float>();
  a.nr = nr;
  a.nc = nc;
  a.C = C;
  a.h = h;
  a.w = w;
  a.hp = h - kB + 1;
  a.wp = w - kB + 1;
  a.half = window / 2;
  a.max_n = wiener ? prof.max_group_wiener : prof.max_group_ht;
  a.tau = wiener ? prof.tau_wiener : prof.tau_ht;
  a.lambda_3d = prof.lambda_3d;
  a.mu2 = prof.mu2;
  for (int c = 0; c < 3; ++c) a.sig[c] = c < C ? sig[c] : 0.f;
  a.wiener = wiener;
  a.inv = matrix(inv);
  a.acorr = matrix(acorr);
  a.kaiser = matrix(tab.kaiser);
  a.haar = dhaar.data_ptr<float>();
  stage_kernel<<<unsigned(nr) * unsigned(nc), kB2, 0, at::cuda::getCurrentCUDAStream()>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return num / den;
}

at::Tensor to_opponent(const at::Tensor& x) {  // (3, h, w)
  at::Tensor R = x[0], G = x[1], B = x[2];
  return at::stack({(R + G + B) / 3.0, (R - B) * 0.5, (R - 2.0 * G + B) * 0.25});
}

at::Tensor from_opponent(const at::Tensor& x) {
  at::Tensor Y = x[0], U = x[1], V = x[2];
  return at::stack({Y + U + V * (2.0 / 3.0), Y - V * (4.0 / 3.0), Y - U + V * (2.0 / 3.0)});
}

at::Tensor denoise_image(const at::Tensor& img_in, double sigma, int window, int step, bool wiener,
                         const Tables& tab) {
  const int C = int(img_in.size(0)), h = int(img_in.size(1)), w = int(img_in.size(2));
  at::Tensor img = (C == 3 ? to_opponent(img_in) : img_in).contiguous();
  float sig[3];
  channel_sigmas(sigma, C, sig);
  const Profile prof = make_profile(sigma);
  // stage 1 filters the bior1.5 spectra and matches on the luminance's; stage 2 filters the DCT
  // spectra and matches on the stage-1 estimate's.
  at::Tensor bior = spectra(img, tab.bior);
  at::Tensor key = bior[0];
  if (prof.lambda_2d > 0.f) {  // the high-noise pre-filter: hard-threshold all but the DC coefficient
    at::Tensor kept = key.abs() > double(prof.lambda_2d * sig[0]);
    kept.select(1, 0).fill_(true);
    key = key * kept;
  }
  key = key.contiguous();
  at::Tensor est = run_stage(false, bior, nullptr, key, tab.bior_inv, tab.bior_acorr, C, h, w, sig, prof, window,
                             step, tab);
  if (wiener) {
    bior = at::Tensor();
    at::Tensor noisy = spectra(img, tab.dct);
    at::Tensor basic = spectra(est.contiguous(), tab.dct);
    at::Tensor bkey = basic[0].contiguous();
    est = run_stage(true, noisy, &basic, bkey, tab.dct_inv, tab.dct_acorr, C, h, w, sig, prof, window, step, tab);
  }
  return C == 3 ? from_opponent(est) : est;
}

at::Tensor bm3d_cuda(const at::Tensor& x, double sigma, int64_t window, int64_t step, bool wiener) {
  check_bm3d_args("bm3d", x, sigma, window, step);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor xf = x.to(at::kFloat).contiguous();
  if (sigma == 0.0) return xf.clone().to(x.scalar_type());
  at::Tensor out = at::empty_like(xf);
  const Tables tab = make_tables();
  for (int64_t i = 0; i < x.size(0); ++i)
    out[i].copy_(denoise_image(xf[i], sigma, int(window), int(step), wiener, tab));
  return out.to(x.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(restorekit, CUDA, m) { m.impl("bm3d", &bm3d_cuda); }

}  // namespace restorekit
