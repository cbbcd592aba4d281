"""Elementwise layers (any layout): activations, Power/Exp/Log, Dropout, Softmax, Eltwise, and the
per-channel affine layers BatchNorm, Scale, Bias, PReLU, Normalize."""

from __future__ import annotations

import math

import numpy as np

from graphkit.convert.caffe.builder import Builder, Tensor
from graphkit.convert.caffe.common import Handler, LayerError, axis_of, blob, channel_const, param
from graphkit.io import dtypes
from graphkit.io.caffe import CaffeLayer


def _unary(op: str) -> Handler:
    def handler(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
        x = inputs[0]
        return [Tensor(b.op(f"{layer.name}/{op}", op, [x.ref]), x.shape, x.perm)]
    return handler


def _scalar(b: Builder, name: str, value: float) -> str:
    return b.const(name, np.float32(value))


def relu(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    x, slope = inputs[0], float(param(layer, "relu_param").negative_slope)
    if slope:
        return [Tensor(b.op(f"{layer.name}/LeakyRelu", "LeakyRelu", [x.ref], alpha=slope), x.shape, x.perm)]
    return [Tensor(b.op(f"{layer.name}/Relu", "Relu", [x.ref]), x.shape, x.perm)]


def prelu(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """max(0, x) + a * min(0, x), a per channel (or one, channel_shared)."""
    x = inputs[0]
    shared = bool(param(layer, "prelu_param").channel_shared)
    alpha = blob(layer, 0, (1,) if shared else (x.shape[1],))
    pos = b.op(f"{layer.name}/Relu", "Relu", [x.ref])
    neg = b.op(f"{layer.name}/Minimum", "Minimum", [x.ref, _scalar(b, f"{layer.name}/zero", 0.0)])
    scaled = b.op(f"{layer.name}/mul", "Mul", [neg, channel_const(b, f"{layer.name}/alpha", alpha, x)])
    return [Tensor(b.op(f"{layer.name}/add", "AddV2", [pos, scaled]), x.shape, x.perm)]


def elu(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    x, alpha = inputs[0], float(param(layer, "elu_param").alpha)
    y = b.op(f"{layer.name}/Elu", "Elu", [x.ref])
    if alpha != 1.0:  # Elu is x or exp(x)-1; scale the negative side
        neg = b.op(f"{layer.name}/neg", "Mul", [b.op(f"{layer.name}/min", "Minimum", [
            y, _scalar(b, f"{layer.name}/zero", 0.0)]), _scalar(b, f"{layer.name}/alpha", alpha - 1.0)])
        y = b.op(f"{layer.name}/add", "AddV2", [y, neg])
    return [Tensor(y, x.shape, x.perm)]


def _affine(b: Builder, layer: CaffeLayer, x: Tensor, scale: float, shift: float) -> str:
    y = x.ref
    if scale != 1.0:
        y = b.op(f"{layer.name}/scale", "Mul", [y, _scalar(b, f"{layer.name}/scale/value", scale)])
    if shift != 0.0:
        y = b.op(f"{layer.name}/shift", "AddV2", [y, _scalar(b, f"{layer.name}/shift/value", shift)])
    return y


def power(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """(shift + scale * x) ^ power."""
    p, x = param(layer, "power_param"), inputs[0]
    y = _affine(b, layer, x, float(p.scale), float(p.shift))
    if float(p.power) != 1.0:
        y = b.op(f"{layer.name}/Pow", "Pow", [y, _scalar(b, f"{layer.name}/power", float(p.power))])
    elif y == x.ref:
        y = b.op(f"{layer.name}/Identity", "Identity", [y])
    return [Tensor(y, x.shape, x.perm)]


def exp(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """base ^ (shift + scale * x); base -1 means e."""
    p, x = param(layer, "exp_param"), inputs[0]
    base = float(p.base)
    log_base = 1.0 if base == -1.0 else math.log(base)
    y = _affine(b, layer, x, float(p.scale) * log_base, float(p.shift) * log_base)
    return [Tensor(b.op(f"{layer.name}/Exp", "Exp", [y]), x.shape, x.perm)]


def log(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """log_base(shift + scale * x); base -1 means e."""
    p, x = param(layer, "log_param"), inputs[0]
    base = float(p.base)
    y = b.op(f"{layer.name}/Log", "Log", [_affine(b, layer, x, float(p.scale), float(p.shift))])
    if base != -1.0:
        y = b.op(f"{layer.name}/base", "Mul", [y, _scalar(b, f"{layer.name}/inv_log_base", 1.0 / math.log(base))])
    return [Tensor(y, x.shape, x.perm)]


def threshold(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    x, t = inputs[0], float(param(layer, "threshold_param").threshold)
    above = b.op(f"{layer.name}/Greater", "Greater", [x.ref, _scalar(b, f"{layer.name}/threshold", t)])
    return [Tensor(b.op(f"{layer.name}/Cast", "Cast", [above], dtype=None, SrcT=dtypes.DT_BOOL,
                             DstT=dtypes.DT_FLOAT), x.shape, x.perm)]


def identity(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """Dropout (inference), Split: the tops are the bottom."""
    return [inputs[0] for _ in layer.tops]


def softmax(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    x = inputs[0]
    axis = axis_of(layer, int(param(layer, "softmax_param").axis), x.rank)
    perm = tuple(p for p in x.perm if p != axis) + (axis,)  # the softmax axis stored last
    x = b.to_perm(x, perm, f"{layer.name}/axis_last")
    return [Tensor(b.op(f"{layer.name}/Softmax", "Softmax", [x.ref]), x.shape, x.perm)]


def eltwise(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p = param(layer, "eltwise_param")
    first = inputs[0]
    xs = [b.to_perm(t, first.perm, f"{layer.name}/align{i}") for i, t in enumerate(inputs)]
    if any(t.shape != first.shape for t in xs):
        raise LayerError(layer, f"bottoms differ in shape: {[list(t.shape) for t in xs]}")
    op = int(p.operation)
    coeffs = list(p.coeff)
    if op == 1 and coeffs:
        if len(coeffs) != len(xs):
            raise LayerError(layer, f"{len(coeffs)} coeffs for {len(xs)} bottoms")
        refs = [t.ref if c == 1.0 else b.op(f"{layer.name}/coeff{i}", "Mul", [t.ref, _scalar(
            b, f"{layer.name}/coeff{i}/value", c)]) for i, (t, c) in enumerate(zip(xs, coeffs, strict=True))]
    else:
        refs = [t.ref for t in xs]
    if op == 1:
        y = b.op(f"{layer.name}/AddN", "AddN", refs, N=len(refs)) if len(refs) > 1 else refs[0]
    else:
        y = refs[0]
        for i, r in enumerate(refs[1:]):
            y = b.op(f"{layer.name}/{'Mul' if op == 0 else 'Maximum'}{i}", "Mul" if op == 0 else "Maximum", [y, r])
    return [Tensor(y, first.shape, first.perm)]


def batch_norm(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """(x - mean) / sqrt(var + eps), mean and var the stored sums divided by the moving-average factor; with
    ``use_global_stats: false`` written in the deploy net, Caffe uses the batch's own statistics (per channel,
    over batch and space, biased variance) even at test time, and so does the converted graph."""
    x = inputs[0]
    c = x.shape[1]
    p = param(layer, "batch_norm_param")
    eps = float(p.eps)
    if p.HasField("use_global_stats") and not p.use_global_stats:
        axes = b.const(f"{layer.name}/axes", np.array([i for i in range(x.rank) if i != x.stored_axis(1)], np.int32))
        mean_t = b.op(f"{layer.name}/mean", "Mean", [x.ref, axes], Tidx=3, keep_dims=True)
        centered = b.op(f"{layer.name}/centered", "Sub", [x.ref, mean_t])
        var_t = b.op(f"{layer.name}/variance", "Mean", [b.op(f"{layer.name}/square", "Square", [centered]), axes],
                     Tidx=3, keep_dims=True)
        inv = b.op(f"{layer.name}/rsqrt", "Rsqrt", [b.op(f"{layer.name}/eps", "AddV2", [
            var_t, _scalar(b, f"{layer.name}/eps/value", eps)])])
        return [Tensor(b.op(f"{layer.name}/normalized", "Mul", [centered, inv]), x.shape, x.perm)]
    mean, var = blob(layer, 0, (c,)).astype(np.float64), blob(layer, 1, (c,)).astype(np.float64)
    factor = float(blob(layer, 2, (1,))[0])
    scale = 0.0 if factor == 0 else 1.0 / factor
    inv_std = 1.0 / np.sqrt(var * scale + eps)
    y = b.op(f"{layer.name}/mul", "Mul", [x.ref, channel_const(b, f"{layer.name}/inv_std", inv_std, x)])
    y = b.op(f"{layer.name}/add", "AddV2", [y, channel_const(b, f"{layer.name}/shift", -mean * scale * inv_std, x)])
    return [Tensor(y, x.shape, x.perm)]


def scale(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p, x = param(layer, "scale_param"), inputs[0]
    axis = axis_of(layer, int(p.axis), x.rank)
    if len(inputs) > 1:
        other = b.to_perm(inputs[1], x.perm, f"{layer.name}/align") if inputs[1].rank == x.rank else None
        if other is None or other.shape != x.shape:
            raise LayerError(layer, "a second bottom is supported only with the first's shape")
        y = b.op(f"{layer.name}/mul", "Mul", [x.ref, other.ref])
        bias_index = 0
    else:
        if int(p.num_axes) != 1 and not (int(p.num_axes) == 0):
            raise LayerError(layer, "only per-channel (num_axes 1) or scalar (num_axes 0) scales are supported")
        size = 1 if int(p.num_axes) == 0 else x.shape[axis]
        gamma = blob(layer, 0, (size,))
        y = b.op(f"{layer.name}/mul", "Mul", [x.ref, channel_const(b, f"{layer.name}/gamma", gamma, x, axis)])
        bias_index = 1
    if p.bias_term:
        size = x.shape[axis]
        beta = blob(layer, bias_index, (size,))
        y = b.op(f"{layer.name}/add", "AddV2", [y, channel_const(b, f"{layer.name}/beta", beta, x, axis)])
    return [Tensor(y, x.shape, x.perm)]


def bias(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p, x = param(layer, "bias_param"), inputs[0]
    axis = axis_of(layer, int(p.axis), x.rank)
    beta = blob(layer, 0, (x.shape[axis],))
    y = b.op(f"{layer.name}/add", "AddV2", [x.ref, channel_const(b, f"{layer.name}/bias", beta, x, axis)])
    return [Tensor(y, x.shape, x.perm)]


def normalize(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """SSD's L2 Normalize: x / sqrt(sum(x^2) + eps) * scale, the sum over channels (or over C*H*W)."""
    p, x = param(layer, "norm_param"), inputs[0]
    shared = bool(p.channel_shared)
    gamma = blob(layer, 0, (1,) if shared else (x.shape[1],))
    axes = [x.stored_axis(1)] if not p.across_spatial else [i for i in range(1, x.rank)]
    sq = b.op(f"{layer.name}/square", "Square", [x.ref])
    total = b.op(f"{layer.name}/sum", "Sum", [sq, b.const(f"{layer.name}/axes", np.array(axes, np.int32))],
                 Tidx=3, keep_dims=True)
    norm = b.op(f"{layer.name}/sqrt", "Sqrt", [b.op(f"{layer.name}/eps", "AddV2", [
        total, _scalar(b, f"{layer.name}/eps/value", float(p.eps))])])
    y = b.op(f"{layer.name}/div", "RealDiv", [x.ref, norm])
    y = b.op(f"{layer.name}/scale", "Mul", [y, channel_const(b, f"{layer.name}/gamma", gamma, x)])
    return [Tensor(y, x.shape, x.perm)]


HANDLERS: dict[str, Handler] = {
    "ReLU": relu, "PReLU": prelu, "ELU": elu, "Sigmoid": _unary("Sigmoid"), "TanH": _unary("Tanh"),
    "AbsVal": _unary("Abs"), "BNLL": _unary("Softplus"), "Power": power, "Exp": exp, "Log": log,
    "Threshold": threshold, "Dropout": identity, "Split": identity, "Softmax": softmax, "Eltwise": eltwise,
    "BatchNorm": batch_norm, "Scale": scale, "Bias": bias, "Normalize": normalize,
}
