"""Fold BatchNorm (+ Scale) into the Convolution or InnerProduct before it, on the layer list, before
conversion: w' = w * a, b' = (b - mean) * a + beta with a = gamma / sqrt(var + eps). Done only where it is
exact in structure: the BatchNorm reads the layer's output and nothing else reads that value."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from graphkit.convert.caffe.common import param
from graphkit.io.caffe import CaffeLayer

_FOLDABLE = {"Convolution": "convolution_param", "InnerProduct": "inner_product_param"}


def fold_batch_norms(layers: list[CaffeLayer]) -> tuple[list[CaffeLayer], list[str]]:
    """The layers with BatchNorm/Scale folded where possible, and the names of the layers folded away."""
    out: list[CaffeLayer] = []
    folded: list[str] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        chain = _chain(layers, i)
        if chain is None:
            out.append(layer)
            i += 1
            continue
        out.append(_fold(layer, chain))
        folded += [c.name for c in chain]
        i += 1 + len(chain)
    return out, folded


def _chain(layers: list[CaffeLayer], i: int) -> list[CaffeLayer] | None:
    layer = layers[i]
    if layer.type not in _FOLDABLE or not layer.blobs or len(layer.tops) != 1:
        return None
    if layer.type == "Convolution" and int(param(layer, "convolution_param").axis) != 1:
        return None
    chain: list[CaffeLayer] = []
    top = layer.tops[0]
    for kind in ("BatchNorm", "Scale"):
        j = i + 1 + len(chain)
        if j >= len(layers) or layers[j].type != kind or layers[j].bottoms != [top] or not layers[j].blobs:
            break
        nxt = layers[j]
        bn = param(nxt, "batch_norm_param") if kind == "BatchNorm" else None
        if bn is not None and bn.HasField("use_global_stats") and not bn.use_global_stats:
            break  # batch statistics: nothing to fold
        scale = param(nxt, "scale_param")
        if kind == "Scale" and (int(scale.axis) != 1 or int(scale.num_axes) != 1):
            break
        if not _only_reader(layers, j, top):
            break
        chain.append(nxt)
        top = nxt.tops[0]
    return chain if chain and chain[0].type == "BatchNorm" else None


def _only_reader(layers: list[CaffeLayer], j: int, blob: str) -> bool:
    """Layer ``j`` is the only reader of the value of ``blob`` it reads."""
    for layer in layers[j + 1:]:
        if blob in layer.bottoms:
            return blob in layers[j].tops  # read again only if layer j rewrote it in place
        if blob in layer.tops:
            return True
    return True


def _fold(layer: CaffeLayer, chain: list[CaffeLayer]) -> CaffeLayer:
    assert layer.blobs is not None
    weights = np.asarray(layer.blobs[0], dtype=np.float64)
    params = copy.deepcopy(layer.params)
    field = getattr(params, _FOLDABLE[layer.type])
    if layer.type == "InnerProduct" and field.transpose:
        return layer  # weights stored (in, out): rare; left unfolded
    out = int(field.num_output)
    bias = np.asarray(layer.blobs[1], dtype=np.float64).reshape(out) if field.bias_term else np.zeros(out)
    scale, shift = np.ones(out), np.zeros(out)
    for link in chain:
        assert link.blobs is not None
        if link.type == "BatchNorm":
            factor = float(np.asarray(link.blobs[2]).reshape(-1)[0])
            s = 0.0 if factor == 0 else 1.0 / factor
            mean = np.asarray(link.blobs[0], np.float64).reshape(out) * s
            var = np.asarray(link.blobs[1], np.float64).reshape(out) * s
            a = 1.0 / np.sqrt(var + float(param(link, "batch_norm_param").eps))
            scale, shift = scale * a, (shift - mean) * a
        else:
            gamma = np.asarray(link.blobs[0], np.float64).reshape(out)
            beta = (np.asarray(link.blobs[1], np.float64).reshape(out) if param(link, "scale_param").bias_term
                    else np.zeros(out))
            scale, shift = scale * gamma, shift * gamma + beta
    new_w = (weights.reshape(out, -1) * scale[:, None]).reshape(layer.blobs[0].shape).astype(np.float32)
    new_b = (bias * scale + shift).astype(np.float32)
    field.bias_term = True
    return dataclasses.replace(layer, tops=[chain[-1].tops[0]], params=params, blobs=[new_w, new_b], spans=[])
