// CPU kernels of restorekit::linear, relu, linear_relu and their backward ops.
//
// The products go to ATen's BLAS (at::mm_out, MKL/OpenBLAS underneath). Everything elementwise is
// one fused pass of our own, parallel over rows with at::parallel_for:
//   forward   out = act(x W^T + b), NaN check  -- one pass over the GEMM output, in place;
//   backward  gpre = g * [out > 0], db = sum_rows(gpre), NaN check on g  -- one pass over g.
// The ReLU derivative at exactly 0 is 0 (mask = out > 0, equivalently pre-activation > 0), the
// same convention as the CUDA kernels, the Python reference Functions and torch.relu.
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

namespace restorekit {
namespace {

constexpr int64_t kGrainElems = 32768;  // elements per task below which we stay single-threaded

inline int64_t rows_grain(int64_t cols) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(cols, 1)); }

// out[r, :] = act(out[r, :] + bias) in place over a contiguous (N, M) block; returns true on NaN.
template <typename scalar_t, bool kRelu, bool kBias>
bool forward_epilogue(scalar_t* out, const scalar_t* bias, int64_t N, int64_t M) {
  std::atomic<bool> nan{false};
  at::parallel_for(0, N, rows_grain(M), [&](int64_t r0, int64_t r1) {
    int bad = 0;
    for (int64_t r = r0; r < r1; ++r) {
      scalar_t* row = out + r * M;
      for (int64_t m = 0; m < M; ++m) {
        scalar_t v = row[m];
        if constexpr (kBias) v += bias[m];
        bad |= (v != v);
        if constexpr (kRelu) v = v > scalar_t(0) ? v : scalar_t(0);
        row[m] = v;
      }
    }
    if (bad) nan.store(true, std::memory_order_relaxed);
  });
  return nan.load();
}

// One pass over grad_out g (any strides): gpre = g * [out > 0] when kRelu (written to a contiguous
// buffer), the column sums of gpre (or of g) into bias_grad when kBiasGrad, and a NaN check on g.
// The column sums are accumulated per chunk of rows in acc_t and combined in chunk order, so the
// result is deterministic for a given thread count.
template <typename scalar_t, bool kRelu, bool kBiasGrad, bool kUnitStride>
bool backward_epilogue(const scalar_t* g, int64_t gs0, int64_t gs1, const scalar_t* out, scalar_t* gpre,
                       scalar_t* bias_grad, int64_t N, int64_t M) {
  using acc_t = at::acc_type<scalar_t, /*is_cuda=*/false>;
  const int64_t grain = rows_grain(M);
  const int64_t nchunks = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(), (N + grain - 1) / grain));
  std::vector<acc_t> partial(kBiasGrad ? static_cast<size_t>(nchunks * M) : 0, acc_t(0));
  std::atomic<bool> nan{false};
  at::parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = N * c / nchunks, r1 = N * (c + 1) / nchunks;
      acc_t* acc = kBiasGrad ? partial.data() + c * M : nullptr;
      int bad = 0;
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* grow = g + r * gs0;
        const scalar_t* orow = kRelu ? out + r * M : nullptr;
        scalar_t* prow = kRelu ? gpre + r * M : nullptr;
        for (int64_t m = 0; m < M; ++m) {
          const scalar_t gv = kUnitStride ? grow[m] : grow[m * gs1];
          bad |= (gv != gv);
          scalar_t v = gv;
          if constexpr (kRelu) {
            v = orow[m] > scalar_t(0) ? gv : scalar_t(0);
            prow[m] = v;
          }
          if constexpr (kBiasGrad) acc[m] += static_cast<acc_t>(v);
        }
      }
      if (bad) nan.store(true, std::memory_order_relaxed);
    }
  });
  if constexpr (kBiasGrad) {
    for (int64_t m = 0; m < M; ++m) {
      acc_t s = 0;
      for (int64_t c = 0; c < nchunks; ++c) s += partial[c * M + m];
      bias_grad[m] = static_cast<scalar_t>(s);
    }
  }
  return nan.load();
}

template <typename scalar_t, bool kRelu>
bool run_backward_epilogue(const at::Tensor& g, const scalar_t* out, scalar_t* gpre, scalar_t* bias_grad,
                           int64_t N, int64_t M) {
  const scalar_t* gp = g.const_data_ptr<scalar_t>();
  const int64_t s0 = g.stride(0), s1 = g.stride(1);
  const bool unit = s1 == 1;
  if (bias_grad != nullptr) {
    return unit ? backward_epilogue<scalar_t, kRelu, true, true>(gp, s0, s1, out, gpre, bias_grad, N, M)
                : backward_epilogue<scalar_t, kRelu, true, false>(gp, s0, s1, out, gpre, bias_grad, N, M);
  }
  return unit ? backward_epilogue<scalar_t, kRelu, false, true>(gp, s0, s1, out, gpre, nullptr, N, M)
              : backward_epilogue<scalar_t, kRelu, false, false>(gp, s0, s1, out, gpre, nullptr, N, M);
}

// ---------------------------------------------------------------------------------------------
// forward: linear and linear_relu
template <bool kRelu>
at::Tensor linear_forward_cpu(const char* op, const at::Tensor& x, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias) {
  check_linear_args(op, x, weight, bias);
  const int64_t N = x.size(0), M = weight.size(0);
  at::Tensor out = at::empty({N, M}, x.options());
  at::mm_out(out, x, weight.t());  // BLAS; handles transposed/strided x and weight, K == 0
  const bool has_bias = bias.has_value() && bias->defined();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  bool nan = false;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "restorekit_linear", [&] {
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    nan = has_bias ? forward_epilogue<scalar_t, kRelu, true>(o, b.const_data_ptr<scalar_t>(), N, M)
                   : forward_epilogue<scalar_t, kRelu, false>(o, nullptr, N, M);
  });
  if (nan) {
    TORCH_CHECK(false, "restorekit::", op, ": NaN in the result; NaN found in ",
                nan_culprits({{"x", x}, {"weight", weight}, {"bias", b}}), ". Arguments: ",
                ArgList().add("x", x).add("weight", weight).add("bias", bias).str());
  }
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
// backward: linear_backward (out undefined) and linear_relu_backward (out = saved forward output)
std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward_impl(
    const char* op, const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& out, std::array<bool, 3> mask) {
  check_linear_backward_args(op, grad_out, x, weight, out);
  const bool relu = out.defined();
  const int64_t N = x.size(0), K = x.size(1), M = weight.size(0);
  at::Tensor gpre = relu ? at::empty({N, M}, x.options()) : grad_out;
  at::Tensor gb = mask[2] ? at::empty({M}, x.options()) : at::Tensor();
  const at::Tensor o = relu ? out.contiguous() : at::Tensor();
  bool nan = false;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "restorekit_linear", [&] {
    scalar_t* gbp = mask[2] ? gb.mutable_data_ptr<scalar_t>() : nullptr;
    if (relu) {
      nan = run_backward_epilogue<scalar_t, true>(grad_out, o.const_data_ptr<scalar_t>(),
                                                   gpre.mutable_data_ptr<scalar_t>(), gbp, N, M);
    } else {
      nan = run_backward_epilogue<scalar_t, false>(grad_out, nullptr, nullptr, gbp, N, M);
    }
  });
  TORCH_CHECK(!nan, "restorekit::", op, ": grad_out contains NaN. Arguments: ",
              ArgList().add("grad_out", grad_out).add("x", x).add("weight", weight).str());
  at::Tensor gx, gw;
  if (mask[0]) {
    gx = at::empty({N, K}, x.options());
    at::mm_out(gx, gpre, weight);
  }
  if (mask[1]) {
    gw = at::empty({M, K}, x.options());
    at::mm_out(gw, gpre.t(), x);
  }
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

// ---------------------------------------------------------------------------------------------
// relu (any shape) and relu_backward
at::Tensor relu_cpu(const at::Tensor& x) {
  check_tensor_common("relu", x, x, ArgList().add("x", x).str());
  const at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  const int64_t n = xc.numel();
  std::atomic<bool> nan{false};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "relu", [&] {
    const scalar_t* in = xc.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, kGrainElems, [&](int64_t i0, int64_t i1) {
      int bad = 0;
      for (int64_t i = i0; i < i1; ++i) {
        const scalar_t v = in[i];
        bad |= (v != v);
        o[i] = v > scalar_t(0) ? v : scalar_t(0);
      }
      if (bad) nan.store(true, std::memory_order_relaxed);
    });
  });
  TORCH_CHECK(!nan.load(), "restorekit::relu: x contains NaN. Arguments: ", ArgList().add("x", x).str());
  return out;
}

at::Tensor relu_backward_cpu(const at::Tensor& grad_out, const at::Tensor& out) {
  check_relu_backward_args("relu_backward", grad_out, out);
  const at::Tensor gc = grad_out.contiguous(), oc = out.contiguous();
  at::Tensor gin = at::empty(out.sizes(), out.options());
  const int64_t n = oc.numel();
  std::atomic<bool> nan{false};
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "relu_backward", [&] {
    const scalar_t* g = gc.const_data_ptr<scalar_t>();
    const scalar_t* o = oc.const_data_ptr<scalar_t>();
    scalar_t* r = gin.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, kGrainElems, [&](int64_t i0, int64_t i1) {
      int bad = 0;
      for (int64_t i = i0; i < i1; ++i) {
        const scalar_t gv = g[i];
        bad |= (gv != gv);
        r[i] = o[i] > scalar_t(0) ? gv : scalar_t(0);
      }
      if (bad) nan.store(true, std::memory_order_relaxed);
    });
  });
  TORCH_CHECK(!nan.load(), "restorekit::relu_backward: grad_out contains NaN. Arguments: ",
              ArgList().add("grad_out", grad_out).add("out", out).str());
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
