// Argument checks shared by the CPU (.cpp) and CUDA (.cu) kernels of the restorekit ops.
//
// Every check fails with a c10::Error (RuntimeError in Python) whose message names the op and the
// shapes, dtypes and devices of all its tensor arguments, so a wrong call is diagnosed from the
// message alone. No kernel reads memory before these checks have passed. Values are never checked:
// NaN and infinities propagate as in torch's own ops (restorekit.nn.detect_nan is the opt-in check).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <optional>
#include <sstream>
#include <string>

#include "gemm_layout.h"

namespace restorekit {

// torch's Python names of the dtypes we mention most.
inline std::string dtype_name(at::ScalarType dt) {
  switch (dt) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    default: return c10::toString(dt);
  }
}

// "[32, 784] float32 cpu" (or "None" for an absent optional tensor).
inline std::string describe(const at::Tensor& t) {
  if (!t.defined()) return "None";
  std::ostringstream s;
  s << t.sizes() << " " << dtype_name(t.scalar_type()) << " " << t.device();
  if (t.dim() == 2 && !t.is_contiguous()) s << " strides " << t.strides();
  return s.str();
}

inline std::string describe(const std::optional<at::Tensor>& t) {
  return t.has_value() ? describe(*t) : std::string("None");
}

// "x: [..] float cpu, weight: [..] ..." for the arguments of one call.
struct ArgList {
  std::ostringstream s;
  ArgList& add(const char* name, const at::Tensor& t) {
    if (s.tellp() > 0) s << ", ";
    s << name << ": " << describe(t);
    return *this;
  }
  ArgList& add(const char* name, const std::optional<at::Tensor>& t) {
    if (s.tellp() > 0) s << ", ";
    s << name << ": " << describe(t);
    return *this;
  }
  std::string str() const { return s.str(); }
};

// dtype and device rules common to all ops: strided, floating point, one dtype, one device;
// float16/bfloat16 only on CUDA.
template <typename Args>
inline void check_tensor_common(const char* op, const at::Tensor& t, const at::Tensor& ref, const Args& args) {
  TORCH_CHECK(t.layout() == at::kStrided, "restorekit::", op,
              ": only dense (strided) tensors are supported; got ", args());
  TORCH_CHECK(t.device() == ref.device(), "restorekit::", op,
              ": all tensors must be on the same device; got ", args());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "restorekit::", op,
              ": all tensors must have the same dtype; got ", args());
  const auto dt = t.scalar_type();
  const bool is_cuda = t.device().is_cuda();
  const bool ok = dt == at::kFloat || dt == at::kDouble ||
                  (is_cuda && (dt == at::kHalf || dt == at::kBFloat16));
  TORCH_CHECK(ok, "restorekit::", op, ": dtype ", dtype_name(dt), " is not supported on ",
              t.device().type(), " (supported: float32, float64",
              is_cuda ? ", float16, bfloat16" : "; float16/bfloat16 on CUDA only", "); got ", args());
}

// Sizes a BLAS product can take: batch N, in_features K and out_features M each at most
// kBlasIntMax (BLAS and cuBLAS take 32-bit sizes; a larger one would be truncated and the product
// garbage). Checked before any copy or allocation, so an expanded view of that size costs nothing.
template <typename Args>
inline void check_blas_sizes(const char* op, int64_t N, int64_t K, int64_t M, const Args& args) {
  const char* which = N > kBlasIntMax ? "the batch size N" : K > kBlasIntMax ? "in_features K" : "out_features M";
  const int64_t value = N > kBlasIntMax ? N : K > kBlasIntMax ? K : M;
  TORCH_CHECK(N <= kBlasIntMax && K <= kBlasIntMax && M <= kBlasIntMax, "restorekit::", op, ": ", which, " = ",
              value, " is above ", kBlasIntMax,
              ", the largest size BLAS takes (32-bit integers); split the product into parts below that "
              "size, or use torch.nn.functional.linear; got ", args());
}

// x: (N, K), weight: (M, K), bias: (M,) or None.
inline void check_linear_args(const char* op, const at::Tensor& x, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias) {
  // The message is built only when a check fails (TORCH_CHECK evaluates it lazily).
  auto args = [&] { return ArgList().add("x", x).add("weight", weight).add("bias", bias).str(); };
  TORCH_CHECK(x.defined() && weight.defined(), "restorekit::", op, ": x and weight are required; got ", args());
  check_tensor_common(op, x, x, args);
  check_tensor_common(op, weight, x, args);
  TORCH_CHECK(x.dim() == 2, "restorekit::", op,
              ": x must be 2-D (batch, in_features); got ", args());
  TORCH_CHECK(weight.dim() == 2, "restorekit::", op,
              ": weight must be 2-D (out_features, in_features); got ", args());
  TORCH_CHECK(x.size(1) == weight.size(1), "restorekit::", op,
              ": in_features mismatch, x.size(1)=", x.size(1), " but weight.size(1)=", weight.size(1),
              "; got ", args());
  check_blas_sizes(op, x.size(0), x.size(1), weight.size(0), args);
  if (bias.has_value() && bias->defined()) {
    check_tensor_common(op, *bias, x, args);
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), "restorekit::", op,
                ": bias must be 1-D of length out_features=", weight.size(0), "; got ", args());
  }
}

// grad_out: (N, M), x: (N, K), weight: (M, K), out: (N, M) or undefined.
inline void check_linear_backward_args(const char* op, const at::Tensor& grad_out, const at::Tensor& x,
                                       const at::Tensor& weight, const at::Tensor& out) {
  auto args = [&] {
    ArgList a;
    a.add("grad_out", grad_out).add("x", x).add("weight", weight);
    if (out.defined()) a.add("out", out);
    return a.str();
  };
  TORCH_CHECK(grad_out.defined() && x.defined() && weight.defined(), "restorekit::", op,
              ": grad_out, x and weight are required; got ", args());
  check_tensor_common(op, grad_out, x, args);
  check_tensor_common(op, x, x, args);
  check_tensor_common(op, weight, x, args);
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && grad_out.dim() == 2, "restorekit::", op,
              ": grad_out, x and weight must be 2-D; got ", args());
  TORCH_CHECK(x.size(1) == weight.size(1), "restorekit::", op,
              ": in_features mismatch, x.size(1)=", x.size(1), " but weight.size(1)=", weight.size(1),
              "; got ", args());
  TORCH_CHECK(grad_out.size(0) == x.size(0) && grad_out.size(1) == weight.size(0), "restorekit::", op,
              ": grad_out must be (batch, out_features) = [", x.size(0), ", ", weight.size(0), "]; got ",
              args());
  check_blas_sizes(op, x.size(0), x.size(1), weight.size(0), args);
  if (out.defined()) {
    check_tensor_common(op, out, x, args);
    TORCH_CHECK(out.sizes() == grad_out.sizes(), "restorekit::", op,
                ": out must have the shape of grad_out; got ", args());
  }
}

// grad_out and out of relu_backward: same shape, dtype and device.
inline void check_relu_backward_args(const char* op, const at::Tensor& grad_out, const at::Tensor& out) {
  auto args = [&] { return ArgList().add("grad_out", grad_out).add("out", out).str(); };
  check_tensor_common(op, grad_out, out, args);
  check_tensor_common(op, out, out, args);
  TORCH_CHECK(grad_out.sizes() == out.sizes(), "restorekit::", op,
              ": grad_out and out must have the same shape; got ", args());
}

}  // namespace restorekit
