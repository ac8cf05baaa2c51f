// CPU kernels of restorekit::linear, relu, linear_relu and their backward ops.
//
// The products go to ATen's BLAS (at::mm_out, MKL/OpenBLAS underneath). Everything elementwise is
// one fused pass of our own, parallel over rows with at::parallel_for:
//   forward   out = act(x W^T + b)  -- one pass over the GEMM output, in place;
//   backward  gpre = g * [out > 0], db = sum_rows(gpre)  -- one pass over g.
// The ReLU derivative at exactly 0 is 0 (mask = not out <= 0, equivalently pre-activation > 0), the
// same convention as the CUDA kernels, the Python reference Functions and torch.relu. Values are
// not checked: NaN propagates as in torch (relu(NaN) = NaN, and its mask passes the gradient, as
// torch.relu's does).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <tuple>
#include <vector>

#include "checks.h"
#include "gemm_layout.h"

// The BLAS that ATen itself calls (MKL in the Linux x86-64 wheels; exported by libtorch_cpu).
// Weak, so a torch build without these symbols loads fine and falls back to at::mm_out.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

namespace restorekit {
namespace {

constexpr int64_t kGrainElems = 32768;    // elementwise: elements per task below which one thread does it
constexpr int64_t kGemmGrain = 1 << 18;   // products: multiply-adds per task below which one thread does it

// Private knob (restorekit._C._set_row_parallel) to compare against one whole-matrix BLAS call
// followed by the epilogue, for benchmarking only.
std::atomic<bool> g_row_parallel{true};

// ---- products: direct BLAS on blocks of rows -------------------------------------------------
template <typename scalar_t>
bool have_blas() {
  if constexpr (std::is_same_v<scalar_t, float>) return sgemm_ != nullptr;
  else return dgemm_ != nullptr;
}

// Whether a 2-D tensor can be handed to BLAS as it is (its sizes are checked by checks.h).
inline bool blas_usable(const at::Tensor& t) {
  BlasOperand op;
  return transposed_operand(t.size(0), t.size(1), t.stride(0), t.stride(1), op);
}

// t itself, or a fresh row-major copy (not .contiguous(): that returns t unchanged when only the
// strides of its size-1 dimensions are odd, or when the view is contiguous with a huge stride).
inline at::Tensor blas_ready(const at::Tensor& t) {
  return blas_usable(t) ? t : at::empty(t.sizes(), t.options()).copy_(t);
}

// Row-major C (n x m, row stride ldc) = A (n x k, strides as0, as1) @ B (k x m, strides bs0, bs1),
// through the column-major BLAS as C^T = B^T A^T (see gemm_layout.h). A and B must be
// blas_usable (blocks of rows of a usable matrix are).
template <typename scalar_t>
void blas_gemm(const scalar_t* A, int64_t n, int64_t k, int64_t as0, int64_t as1, const scalar_t* B, int64_t m,
               int64_t bs0, int64_t bs1, scalar_t* C, int64_t ldc) {
  if (n == 0 || m == 0) return;
  if (k == 0) {
    for (int64_t r = 0; r < n; ++r) std::fill(C + r * ldc, C + r * ldc + m, scalar_t(0));
    return;
  }
  BlasOperand a{}, b{};
  const bool ok = transposed_operand(n, k, as0, as1, a) && transposed_operand(k, m, bs0, bs1, b);
  TORCH_INTERNAL_ASSERT(ok, "restorekit: operand not BLAS-compatible (blas_ready was skipped)");
  const char ta = a.trans ? 'T' : 'N', tb = b.trans ? 'T' : 'N';
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const int lda = static_cast<int>(a.ld), ldb = static_cast<int>(b.ld), ldci = static_cast<int>(ldc);
  const scalar_t one = 1, zero = 0;
  if constexpr (std::is_same_v<scalar_t, float>) {
    sgemm_(&tb, &ta, &mi, &ni, &ki, &one, B, &ldb, A, &lda, &zero, C, &ldci);
  } else {
    dgemm_(&tb, &ta, &mi, &ni, &ki, &one, B, &ldb, A, &lda, &zero, C, &ldci);
  }
}

inline int64_t rows_grain(int64_t work_per_row, int64_t grain) {
  return std::max<int64_t>(1, grain / std::max<int64_t>(work_per_row, 1));
}

// Rows [r0, r1) of a contiguous (N, M) block: out = act(out + bias) in place. The ReLU keeps NaN
// (v <= 0 is false for NaN), as torch.relu does.
template <typename scalar_t, bool kRelu, bool kBias>
void forward_rows(scalar_t* __restrict__ out, const scalar_t* __restrict__ bias, int64_t r0, int64_t r1,
                  int64_t M) {
  for (int64_t r = r0; r < r1; ++r) {
    scalar_t* __restrict__ row = out + r * M;
    for (int64_t m = 0; m < M; ++m) {
      scalar_t v = row[m];
      if constexpr (kBias) v += bias[m];
      if constexpr (kRelu) v = v <= scalar_t(0) ? scalar_t(0) : v;
      row[m] = v;
    }
  }
}

// Rows [r0, r1) of grad_out g (any strides): gpre = g where not out <= 0, else 0, when kRelu
// (contiguous), and column sums of gpre (or of g) added to acc when kBiasGrad.
// All pointers are distinct buffers (__restrict__). Two simple loops per row rather than one with
// everything: each is branch-free and vectorises (one fused loop compiles to a data-dependent branch
// on the mask, which mispredicts half the time on real data and runs ~20x slower).
template <typename scalar_t, bool kRelu, bool kBiasGrad, bool kUnitStride, typename acc_t>
void backward_rows(const scalar_t* __restrict__ g, int64_t gs0, int64_t gs1, const scalar_t* __restrict__ out,
                   scalar_t* __restrict__ gpre, acc_t* __restrict__ acc, int64_t r0, int64_t r1, int64_t M) {
  for (int64_t r = r0; r < r1; ++r) {
    const scalar_t* __restrict__ grow = g + r * gs0;
    if constexpr (kRelu) {
      const scalar_t* __restrict__ orow = out + r * M;
      scalar_t* __restrict__ prow = gpre + r * M;
      for (int64_t m = 0; m < M; ++m) {
        const scalar_t gv = kUnitStride ? grow[m] : grow[m * gs1];
        prow[m] = orow[m] <= scalar_t(0) ? scalar_t(0) : gv;
      }
      if constexpr (kBiasGrad) {
        for (int64_t m = 0; m < M; ++m) acc[m] += static_cast<acc_t>(prow[m]);
      }
    } else if constexpr (kBiasGrad) {
      for (int64_t m = 0; m < M; ++m) acc[m] += static_cast<acc_t>(kUnitStride ? grow[m] : grow[m * gs1]);
    }
  }
}

template <typename scalar_t, bool kRelu, typename acc_t>
void backward_rows_dispatch(const at::Tensor& g, const scalar_t* out, scalar_t* gpre, acc_t* acc, int64_t r0,
                            int64_t r1, int64_t M) {
  const scalar_t* gp = g.const_data_ptr<scalar_t>();
  const int64_t s0 = g.stride(0), s1 = g.stride(1);
  if (acc != nullptr) {
    if (s1 == 1) backward_rows<scalar_t, kRelu, true, true>(gp, s0, s1, out, gpre, acc, r0, r1, M);
    else backward_rows<scalar_t, kRelu, true, false>(gp, s0, s1, out, gpre, acc, r0, r1, M);
  } else if constexpr (kRelu) {  // without relu and bias gradient there is no epilogue
    if (s1 == 1) backward_rows<scalar_t, kRelu, false, true>(gp, s0, s1, out, gpre, acc, r0, r1, M);
    else backward_rows<scalar_t, kRelu, false, false>(gp, s0, s1, out, gpre, acc, r0, r1, M);
  }
}

// ---------------------------------------------------------------------------------------------
// forward: linear and linear_relu. Parallel over blocks of rows; each block is one BLAS call on its
// rows (single-threaded inside the parallel region) followed at once by the fused epilogue on the
// same, still cached, rows. Without an exported BLAS: one at::mm_out, then the epilogue.
template <bool kRelu>
at::Tensor linear_forward_cpu(const char* op, const at::Tensor& x, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias) {
  check_linear_args(op, x, weight, bias);
  const int64_t N = x.size(0), K = x.size(1), M = weight.size(0);
  at::Tensor out = at::empty({N, M}, x.options());
  const at::Tensor wt = weight.t();
  const bool has_bias = bias.has_value() && bias->defined();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "restorekit_linear", [&] {
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    const scalar_t* bp = has_bias ? b.const_data_ptr<scalar_t>() : nullptr;
    auto epilogue = [&](int64_t r0, int64_t r1) {
      if (has_bias) forward_rows<scalar_t, kRelu, true>(o, bp, r0, r1, M);
      else if (kRelu) forward_rows<scalar_t, kRelu, false>(o, bp, r0, r1, M);
    };
    if (N == 0) return;
    if (g_row_parallel.load(std::memory_order_relaxed) && have_blas<scalar_t>()) {
      const at::Tensor xb = blas_ready(x), wb = blas_ready(wt);
      const scalar_t* xp = xb.const_data_ptr<scalar_t>();
      const scalar_t* wp = wb.const_data_ptr<scalar_t>();
      const int64_t xs0 = xb.stride(0), xs1 = xb.stride(1), ws0 = wb.stride(0), ws1 = wb.stride(1);
      at::parallel_for(0, N, rows_grain(M * K + M, kGemmGrain), [&](int64_t r0, int64_t r1) {
        blas_gemm<scalar_t>(xp + r0 * xs0, r1 - r0, K, xs0, xs1, wp, M, ws0, ws1, o + r0 * M, M);
        epilogue(r0, r1);
      });
    } else {
      at::mm_out(out, x, wt);
      at::parallel_for(0, N, rows_grain(M, kGrainElems), epilogue);
    }
  });
  return out;
}

at::Tensor linear_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  return linear_forward_cpu<false>("linear", x, weight, bias);
}

at::Tensor linear_relu_cpu(const at::Tensor& x, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias) {
  return linear_forward_cpu<true>("linear_relu", x, weight, bias);
}

// ---------------------------------------------------------------------------------------------
// backward: linear_backward (out undefined) and linear_relu_backward (out = saved forward output).
// Pass 1, parallel over blocks of rows: the fused epilogue (mask, bias-gradient partial sums per
// thread), then grad_x for those rows (BLAS). Pass 2, parallel over blocks of
// grad_weight's rows: grad_weight = gpre^T x. Bias partial sums are added in thread order, so the
// result is deterministic for a given thread count.
std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward_impl(
    const char* op, const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& out, std::array<bool, 3> mask) {
  check_linear_backward_args(op, grad_out, x, weight, out);
  const bool relu = out.defined();
  const int64_t N = x.size(0), K = x.size(1), M = weight.size(0);
  at::Tensor gpre = relu ? at::empty({N, M}, x.options()) : grad_out;
  at::Tensor gb = mask[2] ? at::empty({M}, x.options()) : at::Tensor();
  at::Tensor gx = mask[0] ? at::empty({N, K}, x.options()) : at::Tensor();
  at::Tensor gw = mask[1] ? at::empty({M, K}, x.options()) : at::Tensor();
  const at::Tensor o = relu ? out.contiguous() : at::Tensor();
  const bool row_parallel = g_row_parallel.load(std::memory_order_relaxed);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "restorekit_linear", [&] {
    using acc_t = at::acc_type<scalar_t, /*is_cuda=*/false>;
    const int64_t slots = std::max(1, at::get_num_threads());
    std::vector<acc_t> partial(mask[2] ? static_cast<size_t>(slots * M) : 0, acc_t(0));
    const scalar_t* op_ = relu ? o.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gp = relu ? gpre.mutable_data_ptr<scalar_t>() : nullptr;
    auto epilogue = [&](int64_t r0, int64_t r1) {
      const int64_t tid = std::min<int64_t>(at::get_thread_num(), slots - 1);
      acc_t* acc = mask[2] ? partial.data() + tid * M : nullptr;
      if (relu) backward_rows_dispatch<scalar_t, true>(grad_out, op_, gp, acc, r0, r1, M);
      else backward_rows_dispatch<scalar_t, false>(grad_out, op_, gp, acc, r0, r1, M);
    };
    const bool direct = row_parallel && have_blas<scalar_t>();
    // the products read gsrc: the masked gradient (relu) or grad_out itself, BLAS-compatible
    const at::Tensor gsrc = relu ? gpre : (direct ? blas_ready(grad_out) : grad_out);
    if (N > 0) {
      if (direct) {
        const at::Tensor wb = blas_ready(weight);
        const scalar_t* gs = gsrc.const_data_ptr<scalar_t>();
        const scalar_t* wp = wb.const_data_ptr<scalar_t>();
        scalar_t* gxp = mask[0] ? gx.mutable_data_ptr<scalar_t>() : nullptr;
        const int64_t gs0 = gsrc.stride(0), gs1 = gsrc.stride(1);
        at::parallel_for(0, N, rows_grain((mask[0] ? M * K : 0) + M, kGemmGrain), [&](int64_t r0, int64_t r1) {
          epilogue(r0, r1);
          if (mask[0]) {  // grad_x rows = gsrc rows @ W, while those rows are in cache
            blas_gemm<scalar_t>(gs + r0 * gs0, r1 - r0, M, gs0, gs1, wp, K, wb.stride(0), wb.stride(1),
                                gxp + r0 * K, K);
          }
        });
      } else {
        at::parallel_for(0, N, rows_grain(M, kGrainElems), epilogue);
        if (mask[0]) at::mm_out(gx, gsrc, weight);
      }
    } else if (mask[0]) {
      gx.zero_();
    }
    if (mask[2]) {
      scalar_t* gbp = gb.mutable_data_ptr<scalar_t>();
      for (int64_t m = 0; m < M; ++m) {
        acc_t s = 0;
        for (int64_t t = 0; t < slots; ++t) s += partial[t * M + m];
        gbp[m] = static_cast<scalar_t>(s);
      }
    }
    // grad_weight = gsrc^T x, parallel over blocks of its rows (columns of gsrc)
    if (mask[1] && direct && M > 0) {
      const at::Tensor xb = blas_ready(x);
      const scalar_t* gs = gsrc.const_data_ptr<scalar_t>();
      const scalar_t* xp = xb.const_data_ptr<scalar_t>();
      scalar_t* gwp = gw.mutable_data_ptr<scalar_t>();
      const int64_t gs0 = gsrc.stride(0), gs1 = gsrc.stride(1);
      at::parallel_for(0, M, rows_grain(N * K, kGemmGrain), [&](int64_t m0, int64_t m1) {
        blas_gemm<scalar_t>(gs + m0 * gs1, m1 - m0, N, gs1, gs0, xp, K, xb.stride(0), xb.stride(1), gwp + m0 * K, K);
      });
    } else if (mask[1]) {
      at::mm_out(gw, gsrc.t(), x);
    }
  });
  return {gx, gw, gb};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight, std::array<bool, 3> mask) {
  return linear_backward_impl("linear_backward", grad_out, x, weight, at::Tensor(), mask);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_relu_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& out,
    std::array<bool, 3> mask) {
  TORCH_CHECK(out.defined(), "restorekit::linear_relu_backward: out (the forward result) is required");
  return linear_backward_impl("linear_relu_backward", grad_out, x, weight, out, mask);
}

}  // namespace

void set_row_parallel(bool on) { g_row_parallel.store(on); }

namespace {

// ---------------------------------------------------------------------------------------------
// relu (any shape) and relu_backward
at::Tensor relu_cpu(const at::Tensor& x) {
  check_tensor_common("relu", x, x, [&] { return ArgList().add("x", x).str(); });
  const at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  const int64_t n = xc.numel();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "relu", [&] {
    const scalar_t* in = xc.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, kGrainElems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const scalar_t v = in[i];
        o[i] = v <= scalar_t(0) ? scalar_t(0) : v;  // NaN stays NaN
      }
    });
  });
  return out;
}

at::Tensor relu_backward_cpu(const at::Tensor& grad_out, const at::Tensor& out) {
  check_relu_backward_args("relu_backward", grad_out, out);
  const at::Tensor gc = grad_out.contiguous(), oc = out.contiguous();
  at::Tensor gin = at::empty(out.sizes(), out.options());
  const int64_t n = oc.numel();
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "relu_backward", [&] {
    const scalar_t* g = gc.const_data_ptr<scalar_t>();
    const scalar_t* o = oc.const_data_ptr<scalar_t>();
    scalar_t* r = gin.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, kGrainElems, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) r[i] = o[i] <= scalar_t(0) ? scalar_t(0) : g[i];
    });
  });
  return gin;
}

}  // namespace

TORCH_LIBRARY_IMPL(restorekit, CPU, m) {
  m.impl("linear", &linear_cpu);
  m.impl("linear_backward", &linear_backward_cpu);
  m.impl("relu", &relu_cpu);
  m.impl("relu_backward", &relu_backward_cpu);
  m.impl("linear_relu", &linear_relu_cpu);
  m.impl("linear_relu_backward", &linear_relu_backward_cpu);
}

}  // namespace restorekit
