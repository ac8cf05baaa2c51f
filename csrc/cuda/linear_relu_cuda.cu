// CUDA kernels of restorekit::linear, relu, linear_relu and their backward ops.
//
// Products: cuBLAS (cublasGemmEx on the current stream's handle; float16/bfloat16 accumulate in
// float32, float32 uses TF32 only when torch.backends.cuda.matmul.allow_tf32 allows it).
// Epilogues: kernels of our own, one pass each:
//   forward   out = act(out + b) in place over the GEMM result;
//   backward  gpre = g where not out <= 0 (else 0) and per-block column sums of gpre for the bias
//             gradient (then a small deterministic reduction over blocks).
// The ReLU derivative at exactly 0 is 0, as on the CPU and in Python. Values are not checked: NaN
// propagates as in torch (relu(NaN) = NaN), so no op reads anything back to the host: the ops never
// synchronise the stream and can be captured in a CUDA graph.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cublas_v2.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <climits>
#include <tuple>

#include "../checks.h"
#include "../gemm_layout.h"

namespace restorekit {
namespace {

constexpr int kThreads = 256;

#define RESTOREKIT_CUBLAS_CHECK(expr)                                                             \
  do {                                                                                            \
    cublasStatus_t _st = (expr);                                                                  \
    TORCH_CHECK(_st == CUBLAS_STATUS_SUCCESS, "restorekit: cuBLAS error ", static_cast<int>(_st), \
                " in " #expr);                                                                    \
  } while (0)

// ---- GEMM ------------------------------------------------------------------------------------
// Layout rules in ../gemm_layout.h (shared with, and tested through, the CPU kernels).
struct Operand {
  const void* ptr;
  cublasOperation_t op;
  int ld;
  at::Tensor keep;  // a contiguous copy when X had general strides
};

Operand cublas_operand(const at::Tensor& X) {
  BlasOperand b{};
  if (transposed_operand(X.size(0), X.size(1), X.stride(0), X.stride(1), b)) {
    return {X.const_data_ptr(), b.trans ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(b.ld), {}};
  }
  // a fresh row-major copy (.contiguous() may return X itself, see gemm_layout.h)
  at::Tensor Xc = at::empty(X.sizes(), X.options()).copy_(X);
  return {Xc.const_data_ptr(), CUBLAS_OP_N, static_cast<int>(std::max<int64_t>(X.size(1), 1)), Xc};
}

template <typename scalar_t>
struct CublasTypes;
template <>
struct CublasTypes<float> {
  static constexpr cudaDataType_t data = CUDA_R_32F;
  using scale_t = float;
};
template <>
struct CublasTypes<double> {
  static constexpr cudaDataType_t data = CUDA_R_64F;
  using scale_t = double;
};
template <>
struct CublasTypes<at::Half> {
  static constexpr cudaDataType_t data = CUDA_R_16F;
  using scale_t = float;
};
template <>
struct CublasTypes<at::BFloat16> {
  static constexpr cudaDataType_t data = CUDA_R_16BF;
  using scale_t = float;
};

// C = A @ B with A (n x k), B (k x m) of any strides and C a contiguous (n x m) tensor.
// Row-major C = A B is column-major C^T = B^T A^T, ldc = m.
template <typename scalar_t>
void gemm(const at::Tensor& A, const at::Tensor& B, at::Tensor& C) {
  const int64_t n = A.size(0), k = A.size(1), m = B.size(1);
  if (n == 0 || m == 0) return;
  if (k == 0) {
    C.zero_();
    return;
  }
  // sizes were checked by check_linear_args / check_linear_backward_args (checks.h)
  TORCH_INTERNAL_ASSERT(n <= kBlasIntMax && m <= kBlasIntMax && k <= kBlasIntMax, "restorekit: unchecked size");
  const Operand a = cublas_operand(A), b = cublas_operand(B);
  using scale_t = typename CublasTypes<scalar_t>::scale_t;
  const scale_t alpha = 1, beta = 0;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  if constexpr (std::is_same_v<scalar_t, double>) {
    compute = CUBLAS_COMPUTE_64F;
  } else if constexpr (std::is_same_v<scalar_t, float>) {
    if (at::globalContext().allowTF32CuBLAS()) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  constexpr cudaDataType_t dt = CublasTypes<scalar_t>::data;
  cublasHandle_t handle = at::cuda::getCurrentCUDABlasHandle();  // bound to the current stream
  RESTOREKIT_CUBLAS_CHECK(cublasGemmEx(handle, b.op, a.op, static_cast<int>(m), static_cast<int>(n),
                                       static_cast<int>(k), &alpha, b.ptr, dt, b.ld, a.ptr, dt, a.ld, &beta,
                                       C.mutable_data_ptr(), dt, static_cast<int>(m), compute,
                                       CUBLAS_GEMM_DEFAULT));
}

// ---- epilogue kernels ------------------------------------------------------------------------
inline int num_blocks(int64_t work, int threads) {
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((work + threads - 1) / threads, sms * 8)));
}

template <typename scalar_t, bool kRelu, bool kBias>
__global__ void forward_epilogue_kernel(scalar_t* __restrict__ out, const scalar_t* __restrict__ bias,
                                        int64_t N, int64_t M) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t total = N * M;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    acc_t v = static_cast<acc_t>(out[i]);
    if constexpr (kBias) v += static_cast<acc_t>(bias[i % M]);
    if constexpr (kRelu) v = v <= acc_t(0) ? acc_t(0) : v;  // NaN stays NaN
    out[i] = static_cast<scalar_t>(v);
  }
}

// Block (32, 8): 32 consecutive columns (coalesced), 8 row lanes striding over rows_per_block rows.
constexpr int kColsPerBlock = 32;
constexpr int kRowLanes = 8;

template <typename scalar_t, bool kRelu, bool kBiasGrad>
__global__ void backward_epilogue_kernel(const scalar_t* __restrict__ g, int64_t gs0, int64_t gs1,
                                         const scalar_t* __restrict__ out, scalar_t* __restrict__ gpre,
                                         at::opmath_type<scalar_t>* __restrict__ partial, int64_t N, int64_t M,
                                         int64_t rows_per_block) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColsPerBlock + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_block;
  const int64_t r1 = std::min<int64_t>(N, r0 + rows_per_block);
  acc_t acc = 0;
  if (col < M) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      acc_t v = static_cast<acc_t>(g[r * gs0 + col * gs1]);
      if constexpr (kRelu) {
        v = static_cast<acc_t>(out[r * M + col]) <= acc_t(0) ? acc_t(0) : v;
        gpre[r * M + col] = static_cast<scalar_t>(v);
      }
      acc += v;
    }
  }
  if constexpr (kBiasGrad) {
    __shared__ acc_t sh[kRowLanes][kColsPerBlock + 1];
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < M) {
      acc_t s = 0;
      for (int j = 0; j < kRowLanes; ++j) s += sh[j][threadIdx.x];
      partial[static_cast<int64_t>(blockIdx.y) * M + col] = s;
    }
  }
}

template <typename scalar_t>
__global__ void sum_partials_kernel(const at::opmath_type<scalar_t>* __restrict__ partial, int64_t R, int64_t M,
                                    scalar_t* __restrict__ out) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t col = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (col >= M) return;
  acc_t s = 0;
  for (int64_t r = 0; r < R; ++r) s += partial[r * M + col];
  out[col] = static_cast<scalar_t>(s);
}

template <typename scalar_t, bool kRelu>
__global__ void relu_kernel(const scalar_t* __restrict__ in, const scalar_t* __restrict__ ref,
                            scalar_t* __restrict__ out, int64_t n) {
  // kRelu: out = relu(in) (NaN stays NaN); otherwise (relu_backward) out = in where not ref <= 0, else 0.
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const acc_t v = static_cast<acc_t>(in[i]);
    const acc_t key = kRelu ? v : static_cast<acc_t>(ref[i]);
    out[i] = static_cast<scalar_t>(key <= acc_t(0) ? acc_t(0) : v);
  }
}

// ---- ops -------------------------------------------------------------------------------------
template <bool kRelu>
at::Tensor linear_forward_cuda(const char* op, const at::Tensor& x, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias) {
  check_linear_args(op, x, weight, bias);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), M = weight.size(0);
  at::Tensor out = at::empty({N, M}, x.options());
  if (N == 0 || M == 0) return out;
  const bool has_bias = bias.has_value() && bias->defined();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "restorekit_linear", [&] {
    gemm<scalar_t>(x, weight.t(), out);
    const int blocks = num_blocks(N * M, kThreads);
    if (has_bias) {
      forward_epilogue_kernel<scalar_t, kRelu, true><<<blocks, kThreads, 0, stream>>>(
          out.mutable_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), N, M);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    } else if (kRelu) {
      forward_epilogue_kernel<scalar_t, kRelu, false><<<blocks, kThreads, 0, stream>>>(
          out.mutable_data_ptr<scalar_t>(), nullptr, N, M);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return out;
}

at::Tensor linear_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  return linear_forward_cuda<false>("linear", x, weight, bias);
}

at::Tensor linear_relu_cuda(const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias) {
  return linear_forward_cuda<true>("linear_relu", x, weight, bias);
}

template <typename scalar_t, bool kRelu, bool kBiasGrad>
void launch_backward_epilogue(const at::Tensor& g, const at::Tensor& out, at::Tensor& gpre, at::Tensor& gb,
                              int64_t N, int64_t M) {
  using acc_t = at::opmath_type<scalar_t>;
  auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t grid_x = (M + kColsPerBlock - 1) / kColsPerBlock;
  int64_t grid_y = std::max<int64_t>(1, (4 * sms + grid_x - 1) / grid_x);
  grid_y = std::min<int64_t>({grid_y, (N + kRowLanes - 1) / kRowLanes, 65535});
  int64_t rows_per_block = (N + grid_y - 1) / grid_y;
  rows_per_block = (rows_per_block + kRowLanes - 1) / kRowLanes * kRowLanes;
  grid_y = (N + rows_per_block - 1) / rows_per_block;
  TORCH_CHECK(grid_x <= INT_MAX, "restorekit: too many columns: ", M);
  at::Tensor partial;
  if (kBiasGrad) partial = at::empty({grid_y, M}, g.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y));
  const dim3 block(kColsPerBlock, kRowLanes);
  backward_epilogue_kernel<scalar_t, kRelu, kBiasGrad><<<grid, block, 0, stream>>>(
      g.const_data_ptr<scalar_t>(), g.stride(0), g.stride(1), kRelu ? out.const_data_ptr<scalar_t>() : nullptr,
      kRelu ? gpre.mutable_data_ptr<scalar_t>() : nullptr, kBiasGrad ? partial.mutable_data_ptr<acc_t>() : nullptr,
      N, M, rows_per_block);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (kBiasGrad) {
    sum_partials_kernel<scalar_t><<<static_cast<unsigned>((M + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        partial.const_data_ptr<acc_t>(), grid_y, M, gb.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward_impl(
    const char* op, const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& out, std::array<bool, 3> mask) {
  check_linear_backward_args(op, grad_out, x, weight, out);
  const c10::cuda::CUDAGuard guard(x.device());
  const bool relu = out.defined();
  const int64_t N = x.size(0), K = x.size(1), M = weight.size(0);
  at::Tensor gpre = relu ? at::empty({N, M}, x.options()) : grad_out;
  at::Tensor gb = mask[2] ? at::zeros({M}, x.options()) : at::Tensor();
  const at::Tensor o = relu ? out.contiguous() : at::Tensor();
  at::Tensor gx = mask[0] ? at::empty({N, K}, x.options()) : at::Tensor();
  at::Tensor gw = mask[1] ? at::empty({M, K}, x.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "restorekit_linear", [&] {
    if (N > 0 && M > 0) {
      if (relu) {
        if (mask[2]) launch_backward_epilogue<scalar_t, true, true>(grad_out, o, gpre, gb, N, M);
        else launch_backward_epilogue<scalar_t, true, false>(grad_out, o, gpre, gb, N, M);
      } else if (mask[2]) {  // linear_backward needs the epilogue for the bias gradient only
        launch_backward_epilogue<scalar_t, false, true>(grad_out, o, gpre, gb, N, M);
      }
    }
    if (mask[0]) gemm<scalar_t>(gpre, weight, gx);  // (N x M) @ (M x K)
    if (mask[1]) gemm<scalar_t>(gpre.t(), x, gw);   // (M x N) @ (N x K)
  });
  return {gx, gw, gb};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight, std::array<bool, 3> mask) {
  return linear_backward_impl("linear_backward", grad_out, x, weight, at::Tensor(), mask);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_relu_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& out,
    std::array<bool, 3> mask) {
  TORCH_CHECK(out.defined(), "restorekit::linear_relu_backward: out (the forward result) is required");
  return linear_backward_impl("linear_relu_backward", grad_out, x, weight, out, mask);
}

template <bool kRelu>
at::Tensor relu_like_cuda(const char* op, const at::Tensor& in, const at::Tensor& ref) {
  const c10::cuda::CUDAGuard guard(in.device());
  const at::Tensor ic = in.contiguous();
  const at::Tensor rc = kRelu ? at::Tensor() : ref.contiguous();
  at::Tensor out = at::empty(in.sizes(), in.options());
  const int64_t n = ic.numel();
  if (n == 0) return out;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "restorekit_relu", [&] {
    relu_kernel<scalar_t, kRelu><<<num_blocks(n, kThreads), kThreads, 0, stream>>>(
        ic.const_data_ptr<scalar_t>(), kRelu ? nullptr : rc.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor relu_cuda(const at::Tensor& x) {
  check_tensor_common("relu", x, x, [&] { return ArgList().add("x", x).str(); });
  return relu_like_cuda<true>("relu", x, at::Tensor());
}

at::Tensor relu_backward_cuda(const at::Tensor& grad_out, const at::Tensor& out) {
  check_relu_backward_args("relu_backward", grad_out, out);
  return relu_like_cuda<false>("relu_backward", grad_out, out);
}

}  // namespace

TORCH_LIBRARY_IMPL(restorekit, CUDA, m) {
  m.impl("linear", &linear_cuda);
  m.impl("linear_backward", &linear_backward_cuda);
  m.impl("relu", &relu_cuda);
  m.impl("relu_backward", &relu_backward_cuda);
  m.impl("linear_relu", &linear_relu_cuda);
  m.impl("linear_relu_backward", &linear_relu_backward_cuda);
}

}  // namespace restorekit
