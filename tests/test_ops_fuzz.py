"""Fuzzing the compiled ops' argument shapes, dtypes and values: a valid call gives the reference
result (NaN where torch gives NaN), an invalid one a RuntimeError naming the op and the shapes --
never a crash or a bad read."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restorekit.nn import extension

pytestmark = pytest.mark.skipif(not extension.available(), reason="restorekit._C is not built")
R = torch.ops.restorekit if extension.available() else None

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.bool,
          torch.complex64]
CPU_OK = (torch.float32, torch.float64)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
dtypes = st.sampled_from(DTYPES)


def _tensor(shape, dtype, seed, nan=False):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g, dtype=torch.float64) if shape else torch.randn((), generator=g,
                                                                                       dtype=torch.float64)
    if nan and t.numel():
        t.view(-1)[seed % t.numel()] = math.nan
    if dtype == torch.bool:
        return t > 0
    return t.to(dtype)


def _fmt(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


@st.composite
def linear_args(draw):
    same = draw(st.booleans())
    if same:  # mostly well-formed, so the valid path is exercised too
        n, k, m = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
        xs, ws = (n, k), (m, k)
        bs = draw(st.sampled_from([None, (m,), (m,), (m + 1,), (1, m)]))
        dt = draw(st.sampled_from(DTYPES[:4] + [torch.int64]))
        dts = (dt, dt, dt)
    else:
        xs, ws = draw(shapes), draw(shapes)
        bs = draw(st.one_of(st.none(), shapes))
        dts = (draw(dtypes), draw(dtypes), draw(dtypes))
    nan_in = draw(st.sampled_from([None, None, None, "x", "weight", "bias"]))
    seed = draw(st.integers(0, 1000))
    return xs, ws, bs, dts, nan_in, seed


def _expect_valid(xs, ws, bs, dts):
    used = dts if bs is not None else dts[:2]
    return (all(d in CPU_OK for d in used) and len(set(used)) == 1 and len(xs) == 2 and len(ws) == 2
            and xs[1] == ws[1] and (bs is None or (len(bs) == 1 and bs[0] == ws[0])))


@pytest.mark.parametrize("opname", ["linear", "linear_relu"])
@FUZZ
@given(args=linear_args())
def test_fuzz_linear_ops(opname, args):
    xs, ws, bs, dts, nan_in, seed = args
    x = _tensor(xs, dts[0], seed, nan=nan_in == "x")
    w = _tensor(ws, dts[1], seed + 1, nan=nan_in == "weight")
    b = None if bs is None else _tensor(bs, dts[2], seed + 2, nan=nan_in == "bias")
    op = getattr(R, opname)
    valid = _expect_valid(xs, ws, bs, dts)
    if valid:  # NaN anywhere propagates as in torch
        y = op(x, w, b)
        ref = torch.nn.functional.linear(x, w, b)
        if opname == "linear_relu":
            ref = torch.relu(ref)
        assert y.shape == (xs[0], ws[0])
        torch.testing.assert_close(y, ref, equal_nan=True)
        return
    with pytest.raises(RuntimeError) as info:
        op(x, w, b)
    msg = str(info.value)
    assert f"restorekit::{opname}" in msg
    assert f"x: {_fmt(xs)}" in msg and f"weight: {_fmt(ws)}" in msg, msg


@FUZZ
@given(xs=shapes, dt=dtypes, nan=st.booleans(), seed=st.integers(0, 1000), transpose=st.booleans())
def test_fuzz_relu(xs, dt, nan, seed, transpose):
    x = _tensor(xs, dt, seed, nan=nan)
    if transpose and x.dim() == 2:
        x = x.t()
    if dt in CPU_OK:
        torch.testing.assert_close(R.relu(x), torch.relu(x), equal_nan=True)
        return
    with pytest.raises(RuntimeError, match=r"restorekit::relu: dtype .*x: \["):
        R.relu(x)


@st.composite
def backward_args(draw):
    n, k, m = draw(st.integers(0, 3)), draw(st.integers(0, 3)), draw(st.integers(0, 3))
    gs = draw(st.sampled_from([(n, m), (n, m), (m, n), (n, m + 1), (n,)]))
    os_ = draw(st.sampled_from([(n, m), (n, m), (n + 1, m)]))
    dts = draw(st.sampled_from([(torch.float64,) * 2, (torch.float32,) * 2, (torch.float32, torch.float64),
                                (torch.int64, torch.int64)]))
    mask = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    nan = draw(st.booleans())
    return (n, k), (m, k), gs, os_, dts, mask, nan, draw(st.integers(0, 1000))


@FUZZ
@given(args=backward_args())
def test_fuzz_backward_ops(args):
    xs, ws, gs, os_, (dt, gdt), mask, nan, seed = args
    x, w = _tensor(xs, dt, seed), _tensor(ws, dt, seed + 1)
    g = _tensor(gs, gdt, seed + 2, nan=nan)
    out = torch.relu(_tensor(os_, dt, seed + 3)) if dt.is_floating_point else _tensor(os_, dt, seed + 3)
    ok_types = dt in CPU_OK and dt == gdt
    shapes_ok = gs == (xs[0], ws[0])
    for relu in (False, True):
        valid = ok_types and shapes_ok and (not relu or os_ == gs)
        call = (lambda: R.linear_relu_backward(g, x, w, out, mask)) if relu else (lambda: R.linear_backward(g, x, w, mask))
        if valid:  # a NaN in g propagates to the gradients, as in torch
            gx, gw, gb = call()
            gp = torch.where(out <= 0, 0.0, g) if relu else g
            for want, got, ref in zip(mask, (gx, gw, gb), (gp @ w, gp.t() @ x, gp.sum(0))):
                if want:
                    torch.testing.assert_close(got, ref, equal_nan=True)
                else:
                    assert got is None
            continue
        with pytest.raises(RuntimeError) as info:
            call()
        assert f"grad_out: {_fmt(gs)}" in str(info.value) and "restorekit::linear" in str(info.value)
