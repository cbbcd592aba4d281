"""Layers that move data between axes: InnerProduct, Concat, Slice, Flatten, Reshape, Permute, Crop.
Axes are Caffe's; each handler maps them through the tensor's stored layout."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from graphkit.convert.caffe.builder import INT32, NHWC, Builder, Tensor, identity_perm
from graphkit.convert.caffe.common import Handler, LayerError, axis_of, blob, param
from graphkit.io.caffe import CaffeLayer


def inner_product(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """MatMul on the input flattened from ``axis`` on. A 4-D NHWC input is flattened as stored and the weight
    columns are permuted to match Caffe's C,H,W flatten order: no Transpose in the graph."""
    p, x = param(layer, "inner_product_param"), inputs[0]
    if axis_of(layer, int(p.axis), x.rank) != 1:
        raise LayerError(layer, "only axis 1 is supported")
    out = int(p.num_output)
    k = int(np.prod(x.shape[1:]))
    weights = blob(layer, 0, (k, out) if p.transpose else (out, k))
    if x.rank == 4 and x.perm == NHWC:  # columns from C,H,W order to H,W,C, a block of rows at a time
        n, c, h, w = x.shape
        rows = weights.T if p.transpose else weights

        def blocks(step: int = max(1, (8 << 20) // (4 * k))) -> Iterator[np.ndarray]:
            for i in range(0, out, step):
                yield rows[i:i + step].reshape(-1, c, h, w).transpose(0, 2, 3, 1)

        kernel, transpose_b = b.const_blocks(f"{layer.name}/weights", (out, k), blocks()), True
    else:
        if x.perm != identity_perm(x.rank):
            x = b.to_perm(x, identity_perm(x.rank), f"{layer.name}/caffe_order")
        # Caffe's (out, k) as is, MatMul transposes it (transpose: the stored (k, out) as is)
        kernel, transpose_b = b.const(f"{layer.name}/weights", weights), not p.transpose
    flat = x.ref if x.rank == 2 else b.reshape(f"{layer.name}/flatten", x.ref, [-1, k])
    y = b.op(f"{layer.name}/MatMul", "MatMul", [flat, kernel], transpose_a=False, transpose_b=transpose_b)
    if p.bias_term:
        y = b.op(f"{layer.name}/BiasAdd", "BiasAdd", [y, b.const(f"{layer.name}/biases", blob(layer, 1, (out,)))])
    return [Tensor(y, (x.shape[0], out), (0, 1))]


def concat(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p, first = param(layer, "concat_param"), inputs[0]
    axis = int(p.axis if p.HasField("axis") or not p.HasField("concat_dim") else p.concat_dim)
    axis = axis_of(layer, axis, first.rank)
    xs = [b.to_perm(t, first.perm, f"{layer.name}/align{i}") for i, t in enumerate(inputs)]
    for t in xs:
        if t.rank != first.rank or any(t.shape[i] != first.shape[i] for i in range(first.rank) if i != axis):
            raise LayerError(layer, f"bottoms do not fit along axis {axis}: {[list(t.shape) for t in xs]}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in xs)
    y = b.op(f"{layer.name}/concat", "ConcatV2", [t.ref for t in xs] + [
        b.const(f"{layer.name}/axis", np.int32(first.stored_axis(axis)))], N=len(xs), Tidx=INT32)
    return [Tensor(y, tuple(shape), first.perm)]


def slice_(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p, x = param(layer, "slice_param"), inputs[0]
    axis = axis_of(layer, int(p.axis if p.HasField("axis") or not p.HasField("slice_dim") else p.slice_dim), x.rank)
    size = x.shape[axis]
    points = [int(v) for v in p.slice_point]
    if points:
        bounds = [0, *points, size]
        sizes = [bounds[i + 1] - bounds[i] for i in range(len(bounds) - 1)]
    else:
        if size % len(layer.tops):
            raise LayerError(layer, f"cannot split {size} evenly into {len(layer.tops)} tops")
        sizes = [size // len(layer.tops)] * len(layer.tops)
    if len(sizes) != len(layer.tops) or any(s <= 0 for s in sizes):
        raise LayerError(layer, f"slice points {points} do not give {len(layer.tops)} parts of axis size {size}")
    node = b.op(f"{layer.name}/split", "SplitV", [x.ref, b.const(f"{layer.name}/sizes", np.array(sizes, np.int32)),
                                                  b.const(f"{layer.name}/axis", np.int32(x.stored_axis(axis)))],
                num_split=len(sizes), Tlen=INT32)
    outs = []
    for i, s in enumerate(sizes):
        shape = list(x.shape)
        shape[axis] = s
        outs.append(Tensor(node if i == 0 else f"{node}:{i}", tuple(shape), x.perm))
    return outs


def _reshape_to(b: Builder, name: str, x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Reshape in Caffe's order, the batch dimension left dynamic when it is unchanged."""
    x = b.to_perm(x, identity_perm(x.rank), f"{name}/caffe_order")
    dims = list(shape)
    if dims and x.shape and dims[0] == x.shape[0]:
        dims[0] = -1
    return Tensor(b.reshape(f"{name}/Reshape", x.ref, dims), shape, identity_perm(len(shape)))


def flatten(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p, x = param(layer, "flatten_param"), inputs[0]
    start, end = axis_of(layer, int(p.axis), x.rank), axis_of(layer, int(p.end_axis), x.rank)
    shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
    return [_reshape_to(b, layer.name, x, shape)]


def reshape(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """Caffe's rules: 0 copies the input dim, one -1 is inferred; ``axis``/``num_axes`` pick the part
    replaced."""
    p, x = param(layer, "reshape_param"), inputs[0]
    dims = [int(d) for d in p.shape.dim]
    axis = int(p.axis)
    start = axis if axis >= 0 else x.rank + axis + 1
    num_axes = int(p.num_axes)
    end = x.rank if num_axes == -1 else start + num_axes
    new = [x.shape[start + i] if d == 0 else d for i, d in enumerate(dims)]
    shape = list(x.shape[:start]) + new + list(x.shape[end:])
    if shape.count(-1) > 1:
        raise LayerError(layer, "more than one -1 in the shape")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        shape[shape.index(-1)] = int(np.prod(x.shape)) // known
    if int(np.prod(shape)) != int(np.prod(x.shape)):
        raise LayerError(layer, f"cannot reshape {list(x.shape)} to {shape}")
    return [_reshape_to(b, layer.name, x, tuple(shape))]


def permute(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    """Only the layout changes: new_caffe = old_caffe.transpose(order), stored bytes untouched."""
    x = inputs[0]
    order = [int(o) for o in param(layer, "permute_param").order]
    order += [i for i in range(x.rank) if i not in order]
    if sorted(order) != list(range(x.rank)):
        raise LayerError(layer, f"order {order} is not a permutation of {x.rank} axes")
    perm = tuple(order.index(p) for p in x.perm)
    shape = tuple(x.shape[o] for o in order)
    return [Tensor(b.op(f"{layer.name}/Identity", "Identity", [x.ref]), shape, perm)]


def crop(b: Builder, layer: CaffeLayer, inputs: list[Tensor]) -> list[Tensor]:
    p, x, ref = param(layer, "crop_param"), inputs[0], inputs[1]
    axis = axis_of(layer, int(p.axis), x.rank)
    offsets = [int(o) for o in p.offset]
    begin, size = [0] * x.rank, [-1] * x.rank
    shape = list(x.shape)
    for i in range(axis, x.rank):
        off = offsets[0] if len(offsets) == 1 else (offsets[i - axis] if offsets else 0)
        if off + ref.shape[i] > x.shape[i]:
            raise LayerError(layer, f"crop of axis {i} ({ref.shape[i]} at offset {off}) exceeds {x.shape[i]}")
        begin[x.stored_axis(i)], size[x.stored_axis(i)] = off, ref.shape[i]
        shape[i] = ref.shape[i]
    y = b.op(f"{layer.name}/Slice", "Slice", [x.ref, b.const(f"{layer.name}/begin", np.array(begin, np.int32)),
                                              b.const(f"{layer.name}/size", np.array(size, np.int32))], Index=INT32)
    return [Tensor(y, tuple(shape), x.perm)]


HANDLERS: dict[str, Handler] = {"InnerProduct": inner_product, "Concat": concat, "Slice": slice_, "Flatten": flatten,
            "Reshape": reshape, "Permute": permute, "Crop": crop}
