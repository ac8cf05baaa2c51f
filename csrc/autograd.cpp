// Autograd for the restorekit ops, registered in C++ (TORCH_LIBRARY_IMPL(restorekit, Autograd)).
//
// Each forward op's derivative is its registered backward op (linear -> linear_backward, relu ->
// relu_backward, linear_relu -> linear_relu_backward), called through the dispatcher, so it runs on
// the tensors' device and is itself differentiable: the backward ops have autograd too, written with
// differentiable ATen ops, which gives double (and higher) backward for gradgradcheck.
//
// Why C++ rather than torch.library.register_autograd: at the course MLP's size (batch 32) the
// Python autograd.Function machinery costs more than the arithmetic; in C++ a fused layer costs one
// dispatcher call forward and one backward. The fake kernels that torch.compile needs are still
// Python (restorekit/nn/ops.py).
//
// What the fused op saves for backward: x, weight and its own output (not the pre-activation): the
// ReLU mask is out > 0. The output is usually alive anyway as the next layer's input, so the fused
// layer adds no activation memory of its own.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <tuple>

namespace restorekit {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Mask = std::array<bool, 3>;
using Triple = std::tuple<Tensor, Tensor, Tensor>;

// ---- dispatcher handles -----------------------------------------------------------------------
Tensor op_linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("restorekit::linear", "")
                       .typed<Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&)>();
  return op.call(x, w, b);
}
Tensor op_linear_relu(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("restorekit::linear_relu", "")
                       .typed<Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&)>();
  return op.call(x, w, b);
}
Tensor op_relu(const Tensor& x) {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("restorekit::relu", "").typed<Tensor(const Tensor&)>();
  return op.call(x);
}
Tensor op_relu_backward(const Tensor& g, const Tensor& out) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("restorekit::relu_backward", "")
                       .typed<Tensor(const Tensor&, const Tensor&)>();
  return op.call(g, out);
}
Triple op_linear_backward(const Tensor& g, const Tensor& x, const Tensor& w, Mask mask) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("restorekit::linear_backward", "")
                       .typed<Triple(const Tensor&, const Tensor&, const Tensor&, Mask)>();
  return op.call(g, x, w, mask);
}
Triple op_linear_relu_backward(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& out,
                               Mask mask) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("restorekit::linear_relu_backward", "")
                       .typed<Triple(const Tensor&, const Tensor&, const Tensor&, const Tensor&, Mask)>();
  return op.call(g, x, w, out, mask);
}

// Calls a backward op from inside a backward pass. With create_graph the call goes through autograd
// (so double backward works); without it, straight to the device kernel (saves the overhead).
template <typename F>
auto in_backward(F&& f) {
  if (at::GradMode::is_enabled()) return f();
  at::AutoDispatchBelowADInplaceOrView guard;
  return f();
}

variable_list as_list(const Triple& t) { return {std::get<0>(t), std::get<1>(t), std::get<2>(t)}; }

// A custom autograd Function cannot return undefined tensors, but the backward ops return None for
// the gradients output_mask leaves out. Their Functions return the defined ones only (pack) and the
// registered kernels put the holes back (unpack); the same for the incoming grads in backward.
variable_list pack(const Triple& t, Mask mask) {
  variable_list out;
  if (mask[0]) out.push_back(std::get<0>(t));
  if (mask[1]) out.push_back(std::get<1>(t));
  if (mask[2]) out.push_back(std::get<2>(t));
  return out;
}
variable_list unpack(const variable_list& v, Mask mask) {
  variable_list out(3);
  size_t j = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (mask[i]) out[i] = v.at(j++);
  }
  return out;
}
void save_mask(AutogradContext* ctx, Mask mask) {
  ctx->saved_data["m0"] = mask[0];
  ctx->saved_data["m1"] = mask[1];
  ctx->saved_data["m2"] = mask[2];
}
Mask load_mask(AutogradContext* ctx) {
  return {ctx->saved_data["m0"].toBool(), ctx->saved_data["m1"].toBool(), ctx->saved_data["m2"].toBool()};
}

bool has(const Tensor& t) { return t.defined(); }

// ---- forward ops ------------------------------------------------------------------------------
struct LinearFn : public torch::autograd::Function<LinearFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& w,
                        const std::optional<Tensor>& b) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor out = op_linear(x, w, b);
    ctx->saved_data["has_bias"] = b.has_value() && b->defined();
    ctx->save_for_backward({x, w});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const Mask mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1), has_bias && ctx->needs_input_grad(2)};
    if (!has(grads[0]) || !(mask[0] || mask[1] || mask[2])) return {Tensor(), Tensor(), Tensor()};
    return as_list(in_backward([&] { return op_linear_backward(grads[0], saved[0], saved[1], mask); }));
  }
};

struct LinearReluFn : public torch::autograd::Function<LinearReluFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& w,
                        const std::optional<Tensor>& b) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor out = op_linear_relu(x, w, b);
    ctx->saved_data["has_bias"] = b.has_value() && b->defined();
    ctx->save_for_backward({x, w, out});  // the output, not the pre-activation
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const Mask mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1), has_bias && ctx->needs_input_grad(2)};
    if (!has(grads[0]) || !(mask[0] || mask[1] || mask[2])) return {Tensor(), Tensor(), Tensor()};
    return as_list(
        in_backward([&] { return op_linear_relu_backward(grads[0], saved[0], saved[1], saved[2], mask); }));
  }
};

struct ReluFn : public torch::autograd::Function<ReluFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor out = op_relu(x);
    ctx->save_for_backward({out});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!has(grads[0])) return {Tensor()};
    const auto saved = ctx->get_saved_variables();
    return {in_backward([&] { return op_relu_backward(grads[0], saved[0]); })};
  }
};

// ---- backward ops (their derivatives give double backward) ------------------------------------
// linear_backward: gx = g W, gW = g^T x, gb = sum_rows g. Bilinear in (g, x, W), so with incoming
// grads (ggx, ggW, ggb): d/dg = ggx W^T + x ggW^T + ggb, d/dx = g ggW, d/dW = g^T ggx.
struct LinearBackwardFn : public torch::autograd::Function<LinearBackwardFn> {
  static variable_list forward(AutogradContext* ctx, const Tensor& g, const Tensor& x, const Tensor& w,
                               Mask mask) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto r = op_linear_backward(g, x, w, mask);
    ctx->save_for_backward({g, x, w});
    save_mask(ctx, mask);
    return pack(r, mask);
  }
  static variable_list backward(AutogradContext* ctx, variable_list packed) {
    const variable_list gg = unpack(packed, load_mask(ctx));
    const auto s = ctx->get_saved_variables();
    const Tensor &g = s[0], &x = s[1], &w = s[2];
    Tensor dg, dx, dw;
    if (ctx->needs_input_grad(0) && (has(gg[0]) || has(gg[1]) || has(gg[2]))) {
      dg = at::zeros_like(g);
      if (has(gg[0])) dg = dg + at::mm(gg[0], w.t());
      if (has(gg[1])) dg = dg + at::mm(x, gg[1].t());
      if (has(gg[2])) dg = dg + gg[2].unsqueeze(0);
    }
    if (ctx->needs_input_grad(1) && has(gg[1])) dx = at::mm(g, gg[1]);
    if (ctx->needs_input_grad(2) && has(gg[0])) dw = at::mm(g.t(), gg[0]);
    return {dg, dx, dw, Tensor()};
  }
};

// linear_relu_backward: as linear_backward with g replaced by gp = g where not out <= 0, else 0 (the
// kernels' mask, which passes NaN positions as torch.relu's does). The mask is piecewise constant, so
// the derivative with respect to out is zero (almost everywhere).
struct LinearReluBackwardFn : public torch::autograd::Function<LinearReluBackwardFn> {
  static variable_list forward(AutogradContext* ctx, const Tensor& g, const Tensor& x, const Tensor& w,
                               const Tensor& out, Mask mask) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto r = op_linear_relu_backward(g, x, w, out, mask);
    ctx->save_for_backward({g, x, w, out});
    save_mask(ctx, mask);
    return pack(r, mask);
  }
  static variable_list backward(AutogradContext* ctx, variable_list packed) {
    const variable_list gg = unpack(packed, load_mask(ctx));
    const auto s = ctx->get_saved_variables();
    const Tensor &g = s[0], &x = s[1], &w = s[2], &out = s[3];
    const Tensor off = out <= 0;  // where the ReLU passes no gradient
    Tensor dg, dx, dw;
    if (ctx->needs_input_grad(0) && (has(gg[0]) || has(gg[1]) || has(gg[2]))) {
      Tensor dgp = at::zeros_like(g);
      if (has(gg[0])) dgp = dgp + at::mm(gg[0], w.t());
      if (has(gg[1])) dgp = dgp + at::mm(x, gg[1].t());
      if (has(gg[2])) dgp = dgp + gg[2].unsqueeze(0);
      dg = at::where(off, at::Scalar(0), dgp);
    }
    if ((ctx->needs_input_grad(1) && has(gg[1])) || (ctx->needs_input_grad(2) && has(gg[0]))) {
      const Tensor gp = at::where(off, at::Scalar(0), g);
      if (ctx->needs_input_grad(1) && has(gg[1])) dx = at::mm(gp, gg[1]);
      if (ctx->needs_input_grad(2) && has(gg[0])) dw = at::mm(gp.t(), gg[0]);
    }
    return {dg, dx, dw, Tensor(), Tensor()};
  }
};

// relu_backward: linear in g; zero derivative in out (almost everywhere).
struct ReluBackwardFn : public torch::autograd::Function<ReluBackwardFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& g, const Tensor& out) {
    at::AutoDispatchBelowADInplaceOrView guard;
    Tensor r = op_relu_backward(g, out);
    ctx->save_for_backward({out});
    return r;
  }
  static variable_list backward(AutogradContext* ctx, variable_list gg) {
    if (!has(gg[0])) return {Tensor(), Tensor()};
    const auto s = ctx->get_saved_variables();
    return {op_relu_backward(gg[0], s[0]), Tensor()};
  }
};

// No graph to record (grad mode off, or no input requires grad): skip the autograd Function machinery.
bool records(std::initializer_list<const Tensor*> ts) {
  if (!at::GradMode::is_enabled()) return false;
  for (const Tensor* t : ts) {
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  }
  return false;
}
const Tensor* opt(const std::optional<Tensor>& t) { return t.has_value() ? &*t : nullptr; }

Triple as_triple(const variable_list& v, Mask mask) {
  const variable_list u = unpack(v, mask);
  return {u[0], u[1], u[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(restorekit, Autograd, m) {
  m.impl("linear", [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
    if (!records({&x, &w, opt(b)})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return op_linear(x, w, b);
    }
    return LinearFn::apply(x, w, b);
  });
  m.impl("linear_relu", [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
    if (!records({&x, &w, opt(b)})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return op_linear_relu(x, w, b);
    }
    return LinearReluFn::apply(x, w, b);
  });
  m.impl("relu", [](const Tensor& x) {
    if (!records({&x})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return op_relu(x);
    }
    return ReluFn::apply(x);
  });
  m.impl("linear_backward", [](const Tensor& g, const Tensor& x, const Tensor& w, Mask mask) {
    if (!records({&g, &x, &w})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return op_linear_backward(g, x, w, mask);
    }
    return as_triple(LinearBackwardFn::apply(g, x, w, mask), mask);
  });
  m.impl("linear_relu_backward",
         [](const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& out, Mask mask) {
           if (!records({&g, &x, &w, &out})) {
             at::AutoDispatchBelowADInplaceOrView guard;
             return op_linear_relu_backward(g, x, w, out, mask);
           }
           return as_triple(LinearReluBackwardFn::apply(g, x, w, out, mask), mask);
         });
  m.impl("relu_backward", [](const Tensor& g, const Tensor& out) {
    if (!records({&g, &out})) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return op_relu_backward(g, out);
    }
    return ReluBackwardFn::apply(g, out);
  });
}

}  // namespace restorekit
