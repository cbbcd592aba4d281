"""``fold-batch-norms``: batch norms in inference mode, and per-channel scales and shifts by constants,
folded into the convolution or matmul before them.

1. ``FusedBatchNorm``/``V2``/``V3`` with ``is_training=False`` and constant statistics become
   ``x * s + b`` with ``s = scale / sqrt(variance + epsilon)`` and ``b = offset - mean * s`` (computed in
   float64, stored in the tensor's dtype): a ``Mul`` and an ``AddV2`` that keeps the batch norm's name.
   Its other outputs (batch statistics, reserve spaces) must be unread.
2. The decomposed form Keras and ``tf.nn.batch_normalization`` write (``Rsqrt``/``Mul``/``Sub``/``AddV2`` on
   constant statistics) is that same ``Mul`` + ``Add`` once ``fold-constants`` has run.
3. ``Mul`` by a per-channel constant after ``Conv2D``, ``DepthwiseConv2dNative``, ``Conv2DBackpropInput``
   or ``MatMul`` (a constant weight; optionally through a ``BiasAdd`` of a constant) scales the weights'
   output channels (and the bias); ``Add``/``AddV2``/``Sub``/``BiasAdd`` of one after them becomes, or joins,
   the ``BiasAdd``. Only where nothing else reads the intermediate and it is not an output; otherwise the
   ``Mul`` + ``Add`` stay, with their precomputed constants (TF's ``fold_batch_norms`` and
   ``optimize_for_inference`` do the same for Conv2D + Mul; tools/graph_transforms/fold_batch_norms.cc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphkit.io import dtypes
from graphkit.io.graph import GraphIndex, TensorRef, input_node, parse_ref, unique_name
from graphkit.io.passes import rewire
from graphkit.optimize.context import Context, Work, alone, attr, const_node, const_value, data_inputs, reads_port
from graphkit.proto import node_def_pb2

if TYPE_CHECKING:
    import numpy as np

FUSED_BATCH_NORMS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"})
LINEAR = frozenset({"Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "MatMul"})
_WEIGHT_INPUT = {"Conv2D": 1, "DepthwiseConv2dNative": 1, "Conv2DBackpropInput": 1, "MatMul": 1}
_SHIFTS = frozenset({"Add", "AddV2", "Sub", "BiasAdd"})
_HEADS = LINEAR | {"BiasAdd"}


def fold_batch_norms_in_place(work: Work, ctx: Context) -> list[str]:
    if not work.has_ops(LINEAR | FUSED_BATCH_NORMS):
        return []
    changes = _fused_in_place(work, ctx)
    while True:
        done = _fold_sweep_in_place(work, ctx)
        if not done:
            return changes
        changes += done


def _fused_in_place(work: Work, ctx: Context) -> list[str]:
    import numpy as np

    index = work.index
    changes = []
    for name in index.of_ops(FUSED_BATCH_NORMS):
        node = index.nodes[name]
        if attr(node, "is_training").b:
            continue
        fmt = attr(node, "data_format").s.decode() if "data_format" in node.attr else "NHWC"
        if fmt not in ("NHWC", "NCHW") or any(reads_port(index, node.name, p) for p in range(1, 6)):
            continue
        refs = data_inputs(node)
        params = [const_value(work, r) for r in refs[1:5]]
        if len(refs) < 5 or any(p is None for p in params):
            continue
        scale, offset, mean, variance = (np.asarray(p, np.float64) for p in params)
        if not (scale.shape == offset.shape == mean.shape == variance.shape) or scale.ndim != 1:
            continue
        eps = attr(node, "epsilon").f if "epsilon" in node.attr else 1e-4
        s = scale / np.sqrt(variance + np.float64(np.float32(eps)))
        b = offset - mean * s
        np_dtype = dtypes.to_numpy(attr(node, "T").type)
        shape = (-1,) if fmt == "NHWC" else (-1, 1, 1)
        taken = set(index.inputs)
        s_node = const_node(unique_name(f"{node.name}/folded_scale", taken), s.astype(np_dtype).reshape(shape))
        taken.add(s_node.name)
        b_node = const_node(unique_name(f"{node.name}/folded_offset", taken), b.astype(np_dtype).reshape(shape))
        taken.add(b_node.name)
        mul = node_def_pb2.NodeDef(name=unique_name(f"{node.name}/scaled", taken), op="Mul",
                                   input=[str(refs[0]), s_node.name], device=node.device)
        mul.attr["T"].type = attr(node, "T").type
        controls = [i for i in node.input if i.startswith("^")]
        add = node_def_pb2.NodeDef(name=node.name, op="AddV2", input=[mul.name, b_node.name, *controls],
                                   device=node.device)
        add.attr["T"].type = attr(node, "T").type
        was = node.op
        work.add([s_node, b_node, mul])
        work.replace(add)
        changes.append(f"{node.name} ({was} in inference mode) -> Mul + Add")
    return changes


def _fold_sweep_in_place(work: Work, ctx: Context) -> list[str]:
    """Fold each scale or shift into the linear op before it, in graph order; what was folded."""
    index = work.index
    protected = set(ctx.outputs)
    ops, inputs = index.ops, index.inputs
    done = []
    for name in index.of_ops(_SHIFTS | {"Mul"}):
        op = ops.get(name)
        if op != "Mul" and op not in _SHIFTS:
            continue  # (gone, or changed by a fold before)
        if not any(ops.get(input_node(i)) in _HEADS for i in inputs[name][:2] if not i.startswith("^")):
            continue  # neither operand comes from a linear op or its BiasAdd: nothing to fold into
        node = index.nodes[name]
        found = _operands(work, node)
        if found is None:
            continue
        head, constant = found
        chain = _chain(index, head, protected)
        if chain is None:
            continue
        linear, bias = chain
        if node.op == "BiasAdd" and bias is None:
            continue  # already the bias of its linear op: nothing to fold
        vector = _per_channel(linear, work, constant)
        if vector is None:
            continue
        keep = node.name in protected
        if node.op == "Mul":
            done.append(_fold_scale(work, node, linear, bias, vector, keep))
            continue
        if node.op == "Sub":
            vector = -vector
        done.append(_fold_shift(work, node, linear, bias, vector, keep))
    return done


def _operands(work: Work, node: node_def_pb2.NodeDef) -> tuple[TensorRef, np.ndarray] | None:
    """(the non-constant operand, the constant) of a binary node with exactly one constant operand."""
    refs = data_inputs(node)
    if len(refs) != 2:
        return None
    values = [const_value(work, r) for r in refs]
    if node.op in ("Sub", "BiasAdd"):  # x - c, BiasAdd(x, c): the constant must be second
        return (refs[0], values[1]) if values[0] is None and values[1] is not None else None
    if (values[0] is None) == (values[1] is None):
        return None
    return (refs[1], values[0]) if values[0] is not None else (refs[0], values[1])  # type: ignore[return-value]


def _chain(index: GraphIndex, head: TensorRef, protected: set[str]) -> tuple[node_def_pb2.NodeDef,
                                                                              node_def_pb2.NodeDef | None] | None:
    """The linear op (and the BiasAdd of a constant after it) that ``head`` is, when only this chain reads
    them and neither is an output."""
    node = index.nodes.get(head.node)
    if node is None or head.port != 0 or node.name in protected or len(index.consumers.get(node.name, [])) != 1 \
            or index.control_consumers.get(node.name):
        return None
    bias = None
    if node.op == "BiasAdd":
        bias = node
        first = parse_ref(node.input[0])
        node = index.nodes.get(first.node)
        if node is None or first.port != 0 or node.name in protected or \
                len(index.consumers.get(node.name, [])) != 1 or index.control_consumers.get(node.name):
            return None
    if node.op not in LINEAR or (node.op == "MatMul" and attr(node, "transpose_a").b):
        return None
    return node, bias


def _per_channel(linear: node_def_pb2.NodeDef, work: Work, constant: np.ndarray) -> np.ndarray | None:
    """The constant as one value per output channel of ``linear``, or None when it varies along another
    axis (or is not a float of the weights' dtype)."""
    import numpy as np

    weights = const_value(work, parse_ref(linear.input[_WEIGHT_INPUT[linear.op]]))
    if weights is None or weights.dtype.kind != "f" or constant.dtype != weights.dtype:
        return None
    channels = _channels(linear, weights)
    rank = 2 if linear.op == "MatMul" else 4
    axis = 1 if linear.op != "MatMul" and _data_format(linear) == "NCHW" else rank - 1
    if constant.ndim > rank:
        return None
    full = constant.reshape((1,) * (rank - constant.ndim) + tuple(constant.shape))
    dims: tuple[int, ...] = tuple(full.shape)
    if any(d != 1 for i, d in enumerate(dims) if i != axis) or full.shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(full.reshape(-1), (channels,)).astype(np.float64)


def _channels(linear: node_def_pb2.NodeDef, weights: np.ndarray) -> int:
    if linear.op == "Conv2D":
        return int(weights.shape[3])
    if linear.op == "DepthwiseConv2dNative":
        return int(weights.shape[2] * weights.shape[3])
    if linear.op == "Conv2DBackpropInput":
        return int(weights.shape[2])
    return int(weights.shape[0 if attr(linear, "transpose_b").b else 1])


def _data_format(node: node_def_pb2.NodeDef) -> str:
    return attr(node, "data_format").s.decode() or "NHWC"


def _scaled_weights(linear: node_def_pb2.NodeDef, weights: np.ndarray, vector: np.ndarray) -> np.ndarray:
    import numpy as np

    w = weights.astype(np.float64)
    if linear.op == "Conv2D":
        w = w * vector
    elif linear.op == "DepthwiseConv2dNative":
        w = w * vector.reshape(weights.shape[2], weights.shape[3])
    elif linear.op == "Conv2DBackpropInput" or attr(linear, "transpose_b").b:
        w = w * vector[:, None]
    else:
        w = w * vector
    return w.astype(weights.dtype)


def _fold_scale(work: Work, node: node_def_pb2.NodeDef, linear: node_def_pb2.NodeDef,
                bias: node_def_pb2.NodeDef | None, vector: np.ndarray, keep: bool) -> str:
    import numpy as np

    slot = _WEIGHT_INPUT[linear.op]
    weights = const_value(work, parse_ref(linear.input[slot]))
    assert weights is not None
    taken = set(work.index.inputs)
    new_w = const_node(unique_name(f"{linear.name}/folded_weights", taken), _scaled_weights(linear, weights, vector))
    work.add([new_w])
    linear.input[slot] = new_w.name
    work.changed([linear.name])
    if bias is not None:
        b = const_value(work, parse_ref(bias.input[1]))
        assert b is not None
        new_b = const_node(unique_name(f"{bias.name}/folded_bias", taken), (b.astype(np.float64) * vector).astype(
            b.dtype))
        work.add([new_b])
        bias.input[1] = new_b.name
        work.changed([bias.name])
    _replace_by(work, node, bias or linear, keep)
    return f"{node.name} (Mul) folded into {linear.name}'s weights" + (f" and {bias.name}" if bias else "")


def _fold_shift(work: Work, node: node_def_pb2.NodeDef, linear: node_def_pb2.NodeDef,
                bias: node_def_pb2.NodeDef | None, vector: np.ndarray, keep: bool) -> str:
    import numpy as np

    weights = const_value(work, parse_ref(linear.input[_WEIGHT_INPUT[linear.op]]))
    assert weights is not None
    taken = set(work.index.inputs)
    if bias is not None:
        b = const_value(work, parse_ref(bias.input[1]))
        assert b is not None
        new_b = const_node(unique_name(f"{bias.name}/folded_bias", taken), (b.astype(np.float64) + vector).astype(
            b.dtype))
        work.add([new_b])
        bias.input[1] = new_b.name
        work.changed([bias.name])
        _replace_by(work, node, bias, keep)
        return f"{node.name} ({node.op}) folded into {bias.name}"
    new_b = const_node(unique_name(f"{node.name}/bias", taken), vector.astype(weights.dtype))
    controls = [i for i in node.input if i.startswith("^")]
    shifted = node_def_pb2.NodeDef(name=node.name, op="BiasAdd", input=[linear.name, new_b.name, *controls],
                                   device=node.device)
    shifted.attr["T"].type = attr(linear, "T").type
    if linear.op != "MatMul":
        shifted.attr["data_format"].s = _data_format(linear).encode()
    was = node.op
    work.add([new_b])
    work.replace(shifted)
    return f"{node.name} ({was}) after {linear.name} -> BiasAdd"


def _replace_by(work: Work, node: node_def_pb2.NodeDef, source: node_def_pb2.NodeDef, keep: bool) -> None:
    """``node``'s consumers read ``source`` instead and ``node`` goes; an output (``keep``) stays, as an
    Identity of ``source``, so its name still answers."""
    if keep:
        identity = node_def_pb2.NodeDef(name=node.name, op="Identity", input=[source.name], device=node.device)
        identity.attr["T"].type = attr(node, "T").type
        work.replace(identity)
        return
    rewire(work.index, {TensorRef(node.name): TensorRef(source.name)})
    work.remove({node.name})


fold_batch_norms = alone(fold_batch_norms_in_place)

