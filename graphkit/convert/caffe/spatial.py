"""Spatial layers: Convolution, Deconvolution, Pooling, LRN -- NHWC, with Caffe's exact padding and
output sizes (docs/formats.md, section 5)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from graphkit.convert.caffe.builder import INT32, NHWC, Builder, Tensor
from graphkit.convert.caffe.common import Handler, LayerError, blob, param
from graphkit.io.caffe import CaffeLayer

LOWEST = float(np.finfo(np.float32).min)


def _pair(repeated: list[int], h: int | None, w: int | None, default: int) -> tuple[int, int]:
    if h is not None and w is not None:
        return int(h), int(w)
    if not repeated:
        return default, default
    return int(repeated[0]), int(repeated[1] if len(repeated) > 1 else repeated[0])


def _opt(p: Any, name: str) -> int | None:
    return int(getattr(p, name)) if p.HasField(name) else None


def conv_geometry(p: Any) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, pad, dilation) as (h, w) pairs from a ConvolutionParameter."""
    kernel = _pair(list(p.kernel_size), _opt(p, "kernel_h"), _opt(p, "kernel_w"), 0)
    stride = _pair(list(p.stride), _opt(p, "stride_h"), _opt(p, "stride_w"), 1)
    pad = _pair(list(p.pad), _opt(p, "pad_h"), _opt(p, "pad_w"), 0)
    dilation = _pair(list(p.dilation), None, None, 1)
    return kernel, stride, pad, dilation


def _check_blob_count(layer: CaffeLayer, expected: int) -> None:
    """Caffe's BaseConvolutionLayer::LayerSetUp: "Incorrect number of weight blobs"."""
    if layer.blobs is not None and layer.blobs and len(layer.blobs) != expected:
        raise LayerError(layer, f"the caffemodel has {len(layer.blobs)} blobs for it but Caffe takes {expected} "
                                "(weights and, with bias_term, the bias); the prototxt and caffemodel do not match")


def convolution(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p = param(layer, "convolution_param")
    x = b.to_perm(inputs[0], NHWC, f"{layer.name}/to_nhwc")
    if x.rank != 4:
        raise LayerError(layer, f"takes a 4-D input, got shape {list(x.shape)}")
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv_geometry(p)
    out, group = int(p.num_output), int(p.group)
    if c % group or out % group:
        raise LayerError(layer, f"group {group} does not divide {c} input and {out} output channels")
    _check_blob_count(layer, 2 if p.bias_term else 1)
    weights = blob(layer, 0, (out, c // group, kh, kw))
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    if oh < 1 or ow < 1:
        raise LayerError(layer, f"kernel larger than the padded input ({h}x{w})")
    common: dict[str, Any] = dict(strides=[1, sh, sw, 1], padding="EXPLICIT",
                                  explicit_paddings=[0, 0, ph, ph, pw, pw, 0, 0], dilations=[1, dh, dw, 1],
                                  data_format="NHWC")
    if group > 1 and group == c:  # depthwise, channel multiplier out / c
        multiplier = out // c
        kernel = weights.reshape(c, multiplier, kh, kw).transpose(2, 3, 0, 1)
        src = x.ref
        if ph or pw:  # DepthwiseConv2dNative's EXPLICIT padding aborts the TF 2.21 process in graph mode: Pad
            src = b.op(f"{layer.name}/pad", "Pad", [src, b.const(f"{layer.name}/paddings", np.array(
                [[0, 0], [ph, ph], [pw, pw], [0, 0]], np.int32))], Tpaddings=INT32)
        y = b.op(f"{layer.name}/depthwise", "DepthwiseConv2dNative",
                 [src, b.const(f"{layer.name}/weights", kernel)],
                 **{**common, "padding": "VALID", "explicit_paddings": []})
    else:  # group > 1 is TF's grouped Conv2D (input depth a multiple of the filter's)
        y = b.op(f"{layer.name}/Conv2D", "Conv2D", [x.ref, b.const(f"{layer.name}/weights",
                                                                weights.transpose(2, 3, 1, 0))], **common)
    if p.bias_term:
        y = b.op(f"{layer.name}/BiasAdd", "BiasAdd", [y, b.const(f"{layer.name}/biases", blob(layer, 1, (out,)))],
                 data_format="NHWC")
    return [Tensor(y, (n, out, oh, ow), NHWC)]


def deconvolution(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p = param(layer, "convolution_param")
    x = b.to_perm(inputs[0], NHWC, f"{layer.name}/to_nhwc")
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv_geometry(p)
    out, group = int(p.num_output), int(p.group)
    if group != 1 or (dh, dw) != (1, 1):
        raise LayerError(layer, "Deconvolution with group or dilation > 1 is not supported yet")
    weights = blob(layer, 0, (c, out, kh, kw))
    full_h, full_w = sh * (h - 1) + kh, sw * (w - 1) + kw
    oh, ow = full_h - 2 * ph, full_w - 2 * pw
    sizes = b.op(f"{layer.name}/output_shape", "Pack", [
        b.op(f"{layer.name}/batch", "StridedSlice", [
            b.op(f"{layer.name}/shape", "Shape", [x.ref], out_type=INT32),
            b.const(f"{layer.name}/b0", np.array([0], np.int32)), b.const(f"{layer.name}/b1", np.array([1], np.int32)),
            b.const(f"{layer.name}/b2", np.array([1], np.int32))], dtype=INT32, Index=INT32, shrink_axis_mask=1,
            begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0),
        b.const(f"{layer.name}/h", np.array(full_h, np.int32)), b.const(f"{layer.name}/w", np.array(full_w, np.int32)),
        b.const(f"{layer.name}/c", np.array(out, np.int32))], dtype=INT32, N=4, axis=0)
    y = b.op(f"{layer.name}/conv2d_transpose", "Conv2DBackpropInput",
             [sizes, b.const(f"{layer.name}/weights", weights.transpose(2, 3, 1, 0)), x.ref],
             strides=[1, sh, sw, 1], padding="VALID", data_format="NHWC", dilations=[1, 1, 1, 1])
    if ph or pw:
        begin = b.const(f"{layer.name}/crop/begin", np.array([0, ph, pw, 0], np.int32))
        size = b.const(f"{layer.name}/crop/size", np.array([-1, oh, ow, -1], np.int32))
        y = b.op(f"{layer.name}/crop", "Slice", [y, begin, size], Index=INT32)
    if p.bias_term:
        y = b.op(f"{layer.name}/BiasAdd", "BiasAdd", [y, b.const(f"{layer.name}/biases", blob(layer, 1, (out,)))],
                 data_format="NHWC")
    return [Tensor(y, (n, out, oh, ow), NHWC)]


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Caffe's pooling output size (pooling_layer.cpp::Reshape), including the clip of a last window that
    would start in the padding."""
    span = (size + 2 * pad - kernel) / stride
    out = (math.ceil(span) if ceil else math.floor(span)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return int(out)


def pooling(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p = param(layer, "pooling_param")
    x = b.to_perm(inputs[0], NHWC, f"{layer.name}/to_nhwc")
    n, c, h, w = x.shape
    if p.pool not in (0, 1):
        raise LayerError(layer, "STOCHASTIC pooling is training-only and not supported")
    kernel = _pair(list(p.kernel_size), _opt(p, "kernel_h"), _opt(p, "kernel_w"), 0)
    stride = _pair(list(p.stride), _opt(p, "stride_h"), _opt(p, "stride_w"), 1)
    pad = _pair(list(p.pad), _opt(p, "pad_h"), _opt(p, "pad_w"), 0)
    if p.global_pooling:
        kernel, stride, pad = (h, w), (1, 1), (0, 0)
    ceil = getattr(p, "round_mode", 0) == 0
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = pooled_size(h, kh, sh, ph, ceil), pooled_size(w, kw, sw, pw, ceil)
    if (oh - 1) * sh >= h + ph or (ow - 1) * sw >= w + pw:
        raise LayerError(layer, f"the last pooling window on a {h}x{w} input starts past the input (pad 0, stride > "
                                "kernel, ceil rounding): Caffe pools an empty window there (-FLT_MAX or a division by "
                                "zero); use round_mode: FLOOR or a different size")
    end_h, end_w = (oh - 1) * sh + kh - h - ph, (ow - 1) * sw + kw - w - pw
    y = x.ref
    if end_h < 0 or end_w < 0:  # the last window ends before the input does: drop the unused tail
        y = b.op(f"{layer.name}/crop", "Slice", [y, b.const(f"{layer.name}/crop/begin", np.zeros(4, np.int32)),
                                                 b.const(f"{layer.name}/crop/size", np.array(
                                                     [-1, h + min(end_h, 0), w + min(end_w, 0), -1], np.int32))],
                 Index=INT32)
    pads = np.array([[0, 0], [ph, max(end_h, 0)], [pw, max(end_w, 0)], [0, 0]], np.int32)
    is_max = p.pool == 0
    if pads.any():
        fill = b.const(f"{layer.name}/pad_value", np.float32(LOWEST if is_max else 0))
        y = b.op(f"{layer.name}/pad", "PadV2", [y, b.const(f"{layer.name}/paddings", pads), fill], Tpaddings=INT32)
    y = b.op(f"{layer.name}/{'MaxPool' if is_max else 'AvgPool'}", "MaxPool" if is_max else "AvgPool", [y],
             ksize=[1, kh, kw, 1], strides=[1, sh, sw, 1], padding="VALID", data_format="NHWC")
    if not is_max:
        # AvgPool VALID divides by kh*kw; Caffe divides by the window clipped to [-pad, size+pad)
        hs = np.arange(oh) * sh - ph
        ws = np.arange(ow) * sw - pw
        rows = np.minimum(hs + kh, h + ph) - hs
        cols = np.minimum(ws + kw, w + pw) - ws
        factor = (kh * kw) / np.outer(rows, cols)
        if not np.allclose(factor, 1.0):
            y = b.op(f"{layer.name}/divisor", "Mul", [y, b.const(f"{layer.name}/divisor/factor",
                                                              factor.reshape(1, oh, ow, 1).astype(np.float32))])
    return [Tensor(y, (n, c, oh, ow), NHWC)]


def lrn(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p = param(layer, "lrn_param")
    x = b.to_perm(inputs[0], NHWC, f"{layer.name}/to_nhwc")
    size = int(p.local_size)
    if size % 2 == 0:
        raise LayerError(layer, f"local_size must be odd (Caffe requires it), got {size}")
    if p.norm_region == 0:  # ACROSS_CHANNELS: scale = k + alpha/n * sum over n channels
        y = b.op(f"{layer.name}/LRN", "LRN", [x.ref], depth_radius=(size - 1) // 2, bias=float(p.k),
                 alpha=float(p.alpha) / size, beta=float(p.beta))
        return [Tensor(y, x.shape, NHWC)]
    # WITHIN_CHANNEL: y = x * (1 + alpha * avgpool_n(x^2))^-beta, the pool zero-padded, divisor n*n
    half = (size - 1) // 2
    sq = b.op(f"{layer.name}/square", "Square", [x.ref])
    padded = b.op(f"{layer.name}/pad", "Pad", [sq, b.const(f"{layer.name}/paddings", np.array(
        [[0, 0], [half, half], [half, half], [0, 0]], np.int32))], Tpaddings=INT32)
    avg = b.op(f"{layer.name}/avg", "AvgPool", [padded], ksize=[1, size, size, 1], strides=[1, 1, 1, 1],
               padding="VALID", data_format="NHWC")
    scale = b.op(f"{layer.name}/scale", "AddV2", [b.op(f"{layer.name}/alpha", "Mul", [
        avg, b.const(f"{layer.name}/alpha/value", np.float32(p.alpha))]), b.const(f"{layer.name}/one", np.float32(1))])
    power = b.op(f"{layer.name}/power", "Pow", [scale, b.const(f"{layer.name}/beta", np.float32(-p.beta))])
    return [Tensor(b.op(f"{layer.name}/LRN", "Mul", [x.ref, power]), x.shape, NHWC)]


HANDLERS: dict[str, Handler] = {"Convolution": convolution, "Deconvolution": deconvolution, "Pooling": pooling,
                               "LRN": lrn}
