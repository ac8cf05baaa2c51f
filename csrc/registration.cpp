// The restorekit operator library: schemas of every op (TORCH_LIBRARY) and the Python module
// restorekit._C whose import loads them.
//
// Kernels live beside this file: CPU in linear_relu_cpu.cpp (TORCH_LIBRARY_IMPL(restorekit, CPU)),
// CUDA in cuda/linear_relu_cuda.cu (TORCH_LIBRARY_IMPL(restorekit, CUDA)), autograd in autograd.cpp
// (TORCH_LIBRARY_IMPL(restorekit, Autograd)). Fake (meta) kernels for torch.compile are Python
// functions in restorekit/nn/ops.py, named here with set_python_module.
//
// Loading follows pytorch/extension-cpp: restorekit.nn.extension.load() imports this module (which
// registers the ops), then restorekit.nn.ops (which registers their fake kernels). Python calls the
// ops as torch.ops.restorekit.*; this module binds no functions of its own for them.
//
// Ops (x: (N, K), weight: (M, K), bias: (M,), out and grad_out: (N, M)):
//   linear(x, weight, bias=None)               x W^T + b
//   linear_backward(grad_out, x, weight, output_mask) -> (grad_x, grad_weight, grad_bias)
//   relu(x)                                    max(x, 0), any shape
//   relu_backward(grad_out, out)               grad_out where not out <= 0, else 0
//   linear_relu(x, weight, bias=None)          max(x W^T + b, 0), fused
//   linear_relu_backward(grad_out, x, weight, out, output_mask) -> (grad_x, grad_weight, grad_bias)
// output_mask says which of the three gradients to compute; the others come back as None.
//   bm3d(x, sigma, window=39, step=3, wiener=True)  CBM3D / BM3D denoising of x (N, C in {1, 3}, H, W),
//                                              forward only (no autograd); kernels in bm3d_cpu.cpp and
//                                              cuda/bm3d_cuda.cu, profile in bm3d_common.h, fake
//                                              kernel and checks in restorekit/nn/bm3d_ops.py
#include <torch/extension.h>

namespace restorekit {

void set_row_parallel(bool on);  // linear_relu_cpu.cpp

TORCH_LIBRARY(restorekit, m) {
  m.set_python_module("restorekit.nn.ops");
  m.def("linear(Tensor x, Tensor weight, Tensor? bias=None) -> Tensor");
  m.def("linear_backward(Tensor grad_out, Tensor x, Tensor weight, bool[3] output_mask) "
        "-> (Tensor, Tensor, Tensor)");
  m.def("relu(Tensor x) -> Tensor");
  m.def("relu_backward(Tensor grad_out, Tensor out) -> Tensor");
  m.def("linear_relu(Tensor x, Tensor weight, Tensor? bias=None) -> Tensor");
  m.def("linear_relu_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor out, bool[3] output_mask) "
        "-> (Tensor, Tensor, Tensor)");
}

// bm3d's fake kernel lives in its own Python module (restorekit/nn/bm3d_ops.py), hence a fragment.
TORCH_LIBRARY_FRAGMENT(restorekit, m) {
  m.set_python_module("restorekit.nn.bm3d_ops");
  m.def("bm3d(Tensor x, float sigma, int window=39, int step=3, bool wiener=True) -> Tensor");
}

}  // namespace restorekit

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "restorekit compiled ops; importing this module registers torch.ops.restorekit.*";
#ifdef RESTOREKIT_WITH_CUDA
  m.attr("cuda_built") = true;
#else
  m.attr("cuda_built") = false;
#endif
  m.def("_set_row_parallel", &restorekit::set_row_parallel,
        "benchmarking only: CPU products per block of rows in parallel (True, default) or one BLAS call");
  m.attr("ops") = pybind11::make_tuple("linear", "linear_backward", "relu", "relu_backward", "linear_relu",
                                       "linear_relu_backward");
}
