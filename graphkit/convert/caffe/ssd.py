"""SSD-Caffe's PriorBox: a constant computed from the feature map and image sizes (prior_box_layer.cpp)."""

from __future__ import annotations

import math

import numpy as np

from graphkit.convert.caffe.builder import Builder, Tensor
from graphkit.convert.caffe.common import Handler, LayerError, param
from graphkit.io.caffe import CaffeLayer


def prior_box(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p = param(layer, "prior_box_param")
    fmap, image = inputs[0], inputs[1]
    layer_h, layer_w = fmap.shape[2], fmap.shape[3]
    img_h = int(p.img_h or p.img_size or image.shape[2])
    img_w = int(p.img_w or p.img_size or image.shape[3])
    step_h = float(p.step_h or p.step or img_h / layer_h)
    step_w = float(p.step_w or p.step or img_w / layer_w)
    offset = float(p.offset)
    min_sizes = [float(v) for v in p.min_size]
    max_sizes = [float(v) for v in p.max_size]
    if not min_sizes or (max_sizes and len(max_sizes) != len(min_sizes)):
        raise LayerError(layer, "needs min_size (and as many max_size, if any)")
    ratios = [1.0]
    for r in p.aspect_ratio:
        r = float(r)
        if any(abs(r - a) < 1e-6 for a in ratios):
            continue
        ratios.append(r)
        if p.flip:
            ratios.append(1.0 / r)
    boxes = []
    for h in range(layer_h):
        for w in range(layer_w):
            cx, cy = (w + offset) * step_w, (h + offset) * step_h
            for s, min_size in enumerate(min_sizes):
                sizes = [(min_size, min_size)]
                if max_sizes:
                    side = math.sqrt(min_size * max_sizes[s])
                    sizes.append((side, side))
                sizes += [(min_size * math.sqrt(r), min_size / math.sqrt(r)) for r in ratios if abs(r - 1.0) >= 1e-6]
                for bw, bh in sizes:
                    boxes.append([(cx - bw / 2) / img_w, (cy - bh / 2) / img_h, (cx + bw / 2) / img_w,
                                  (cy + bh / 2) / img_h])
    coords = np.asarray(boxes, np.float32).reshape(-1)
    if p.clip:
        coords = np.clip(coords, 0.0, 1.0)
    variance = [float(v) for v in p.variance] or [0.1]
    if len(variance) not in (1, 4):
        raise LayerError(layer, "variance must have 1 or 4 values")
    var = np.tile(np.asarray(variance if len(variance) == 4 else variance * 4, np.float32), coords.size // 4)
    value = np.stack([coords, var]).reshape(1, 2, coords.size)
    return [Tensor(b.const(f"{layer.name}/priors", value), value.shape, (0, 1, 2))]


HANDLERS: dict[str, Handler] = {"PriorBox": prior_box}
