"""``fold-constants``: nodes whose inputs are all constant become constants, evaluated with numpy -- only
for ops where numpy computes what TF's CPU kernel computes (shape arithmetic; elementwise arithmetic in
the tensor's own dtype, IEEE rounding, subnormal float32/float64 flushed to zero as TF's kernels run;
``Rsqrt`` as 1/sqrt, within an ulp of Eigen's estimate-and-refine, which itself varies by CPU). The tests
check each evaluator bit for bit against TF's kernel on seeded values, subnormals, infinities and NaNs.

As Grappler's constant folding (``core/grappler/optimizers/constant_folding.cc``): the folded Const keeps
the node's name (so its consumers need no change) and carries the control inputs of the node and of the
constants it read (a node in a while loop's frame stays in it); a result larger than ``max_folded_bytes``
and than what it was made from stays unfolded (a ``Fill`` that would write megabytes). ``Shape``, ``Size``
and ``Rank`` fold when the input's shape is fully known (a Const, a Placeholder's ``shape``, or the
producer's ``_output_shapes``). Anything numpy cannot do exactly as TF (an out-of-range cast, a
truncating cast, float ``Range``, which TF accumulates) is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from graphkit.io import dtypes
from graphkit.io.graph import GraphIndex, TensorRef, input_node
from graphkit.io.ops import INFERENCE_IDENTITIES
from graphkit.io.shapes import shape_of
from graphkit.optimize.context import (
    Context,
    Work,
    alone,
    attr,
    const_node,
    const_value,
    controls,
    data_inputs,
    resolve,
)
from graphkit.proto import node_def_pb2

if TYPE_CHECKING:
    import numpy as np

Evaluator = Callable[[node_def_pb2.NodeDef, list["np.ndarray"]], "np.ndarray | None"]


def _flush(x: np.ndarray) -> np.ndarray:
    """Subnormal float32/float64 values as signed zeros: TF runs its CPU kernels with denormals flushed
    (flush-to-zero and denormals-are-zero; tsl/platform/denormal.h, ScopedFlushDenormal), numpy does not."""
    import numpy as np

    if x.dtype not in (np.float32, np.float64):
        return x
    tiny = np.finfo(x.dtype).tiny
    return np.where(np.abs(x) < tiny, np.copysign(np.zeros((), x.dtype), x), x).astype(x.dtype)


def _binary(fn_name: str, floats_only: bool = False) -> Evaluator:
    def run(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
        import numpy as np

        a, b = args
        if a.dtype != b.dtype or a.dtype.kind not in ("f" if floats_only else "fiu") or a.dtype == object:
            return None
        if fn_name in ("maximum", "minimum") and a.dtype.kind == "f" and (np.isnan(a).any() or np.isnan(b).any()):
            return None  # which NaN Eigen's max/min keep is its own business: TF computes it
        with np.errstate(all="ignore"):
            return _flush(np.asarray(getattr(np, fn_name)(_flush(a), _flush(b)), dtype=a.dtype))
    return run


def _unary(fn: Callable[[np.ndarray], np.ndarray], floats_only: bool = True, flush: bool = True) -> Evaluator:
    def run(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
        import numpy as np

        (a,) = args
        if a.dtype.kind not in ("f" if floats_only else "fiu"):
            return None
        with np.errstate(all="ignore"):
            if not flush:  # a sign flip: no arithmetic, so subnormals stay (as in TF)
                return np.asarray(fn(a), dtype=a.dtype)
            return _flush(np.asarray(fn(_flush(a)), dtype=a.dtype))
    return run


def _sqrt(a: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.sqrt(a)


def _rsqrt(a: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.asarray(1, a.dtype) / np.sqrt(a)


def _ints(value: np.ndarray) -> list[int] | None:
    if value.dtype.kind not in "iu":
        return None
    return [int(v) for v in value.reshape(-1)]


def _pack(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    import numpy as np

    if len({a.dtype for a in args}) != 1 or len({a.shape for a in args}) != 1:
        return None
    return np.stack(args, axis=attr(node, "axis").i)


def _concat(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    import numpy as np

    *values, axis = args
    if not values or len({a.dtype for a in values}) != 1 or axis.size != 1 or axis.dtype.kind not in "iu":
        return None
    try:
        return np.concatenate(values, axis=int(axis.reshape(-1)[0]))
    except ValueError:  # numpy's AxisError is one
        return None


def _strided_slice(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    """TF's StridedSlice (array_ops.cc, strided_slice_op.cc) spelled as a numpy index: masks bit by bit."""
    x, begin, end, strides = args
    b, e, s = _ints(begin), _ints(end), _ints(strides)
    if b is None or e is None or s is None or not len(b) == len(e) == len(s) or 0 in s:
        return None
    attr = node.attr
    masks = {k: attr[k].i for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    if bin(masks["ellipsis_mask"]).count("1") > 1:
        return None
    index: list[object] = []
    for i in range(len(b)):
        bit = 1 << i
        if masks["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif masks["new_axis_mask"] & bit:
            index.append(None)
        elif masks["shrink_axis_mask"] & bit:
            if s[i] <= 0:  # TF: "only stride 1 allowed on non-range indexing" (strided_slice_op.cc)
                return None
            index.append(b[i])
        else:
            index.append(slice(None if masks["begin_mask"] & bit else b[i], None if masks["end_mask"] & bit else e[i],
                               s[i]))
    try:
        import numpy as np

        return np.array(x[tuple(index)])  # type: ignore[arg-type]  # a mixed index numpy's stubs do not spell
    except IndexError:
        return None


def _slice(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    x, begin, size = args
    b, n = _ints(begin), _ints(size)
    if b is None or n is None or len(b) != x.ndim or len(n) != x.ndim:
        return None
    index = []
    for start, count, dim in zip(b, n, x.shape, strict=True):
        stop = dim if count == -1 else start + count
        if not 0 <= start <= stop <= dim:
            return None
        index.append(slice(start, stop))
    return x[tuple(index)].copy()


def _reshape(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    x, shape = args
    dims = _ints(shape)
    if dims is None or dims.count(-1) > 1 or any(d < -1 for d in dims):
        return None
    try:
        return x.reshape(dims)
    except ValueError:
        return None


def _expand_dims(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    import numpy as np

    x, axis = args
    axes = _ints(axis)
    if axes is None or len(axes) != 1 or not -x.ndim - 1 <= axes[0] <= x.ndim:
        return None
    return np.expand_dims(x, axes[0])


def _squeeze(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    import numpy as np

    (x,) = args
    axes = [int(a) for a in attr(node, "squeeze_dims").list.i] if "squeeze_dims" in node.attr else []
    axes = [a + x.ndim if a < 0 else a for a in axes]
    if any(not 0 <= a < x.ndim or x.shape[a] != 1 for a in axes):
        return None
    return np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)


def _transpose(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    import numpy as np

    x, perm = args
    order = _ints(perm)
    if order is None or sorted(order) != list(range(x.ndim)):
        return None
    return np.ascontiguousarray(np.transpose(x, order))


def _fill(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    import numpy as np

    dims, value = args
    shape = _ints(dims)
    if shape is None or value.size != 1 or any(d < 0 for d in shape):
        return None
    return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)


def _range(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    """Integers only: TF accumulates ``val += delta`` (range_op... RangeOp::Compute), numpy multiplies; for
    integers the two agree."""
    import numpy as np

    start, limit, delta = args
    if any(a.dtype.kind not in "iu" or a.size != 1 for a in args) or int(delta.reshape(-1)[0]) == 0:
        return None
    return np.arange(int(start.reshape(-1)[0]), int(limit.reshape(-1)[0]), int(delta.reshape(-1)[0]),
                     dtype=start.dtype)


def _cast(node: node_def_pb2.NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    """numpy's cast is C's: TF's (static_cast, cast_op_impl.h) for in-range values; anything else stays."""
    import numpy as np

    (x,) = args
    if attr(node, "Truncate").b or x.dtype.kind not in "fiub":
        return None
    try:
        target = dtypes.to_numpy(attr(node, "DstT").type)
    except Exception:  # noqa: BLE001 -- a dtype numpy lacks: not folded
        return None
    if target.kind not in "fiub":
        return None
    if target.kind == "b":
        x = _flush(x)  # a comparison with zero: subnormals count as zero in TF
    if x.dtype.kind == "f" and target.kind in "iu":
        info = np.iinfo(target)
        if not np.all(np.isfinite(x)) or x.size and (x.min() <= info.min - 1 or x.max() >= info.max + 1):
            return None
    if x.dtype.kind in "iu" and target.kind in "iu":
        info = np.iinfo(target)
        if x.size and (int(x.min()) < info.min or int(x.max()) > info.max):
            return None
    with np.errstate(all="ignore"):  # a float past float16's range is inf, as in TF: no warning on stderr
        return x.astype(target)


ELEMENTWISE: dict[str, Evaluator] = {
    "Add": _binary("add"), "AddV2": _binary("add"), "Sub": _binary("subtract"), "Mul": _binary("multiply"),
    "RealDiv": _binary("divide", floats_only=True), "Maximum": _binary("maximum"),
    "Minimum": _binary("minimum"), "Neg": _unary(lambda a: -a, floats_only=False, flush=False),
    "Sqrt": _unary(_sqrt), "Rsqrt": _unary(_rsqrt), "Square": _unary(lambda a: a * a, floats_only=False),
}
EVALUATORS: dict[str, Evaluator] = {
    **ELEMENTWISE, "Pack": _pack, "ConcatV2": _concat, "StridedSlice": _strided_slice, "Slice": _slice,
    "Reshape": _reshape, "ExpandDims": _expand_dims, "Squeeze": _squeeze, "Transpose": _transpose, "Fill": _fill,
    "Range": _range, "Cast": _cast,
}
SHAPE_OPS = frozenset({"Shape", "Size", "Rank"})


def fold_constants_in_place(work: Work, ctx: Context) -> list[str]:
    """The folding pass (see the module docstring); passes over the nodes until nothing more folds."""
    index = work.index
    keep = set(ctx.inputs)
    ops, inputs = index.ops, index.inputs
    constish = _constish(index)
    pending = []
    for name in index.of_ops(EVALUATORS.keys() | SHAPE_OPS):
        op, texts = ops[name], inputs[name]
        first = texts[0] if texts else "^"  # (the cheap test first: most nodes read no constant first)
        cheap = op in SHAPE_OPS or first in constish or first[:1] == "^" or first.partition(":")[0] in constish
        if cheap and _candidate(name, op, texts, constish, keep):
            pending.append(name)
    if not pending:
        return []
    folded: list[str] = []
    while pending:
        later = []
        for name in pending:
            if ops[name] == "Const":
                continue
            node = index.nodes[name]
            value = _evaluate(work, node)
            if value is None:
                continue
            refs = data_inputs(node)
            sources = {resolve(index, r).node for r in refs}
            made_from = sum(work.const_nbytes(index.nodes[s]) for s in sources if ops.get(s) == "Const")
            if value.nbytes > ctx.max_folded_bytes and value.nbytes > made_from:
                continue
            new = const_node(node.name, value)
            new.device = node.device
            inherited = {c for s in sources for c in controls(index.nodes[s])}
            new.input.extend(sorted(set(controls(node)) | inherited))
            was = node.op
            readers = [c for c, _ in index.consumers.get(name, ())]  # folding keeps data edges
            work.replace(new)
            folded.append(f"{name} ({was})")
            constish.add(name)
            later += [c for c in readers if _candidate(c, ops[c], inputs[c], constish, keep)]
        pending = list(dict.fromkeys(later))
    return folded


def _constish(index: GraphIndex) -> set[str]:
    """Consts, and pass-throughs of them (what const_value resolves)."""
    inputs = index.inputs
    out = set(index.of_ops({"Const"}))
    passes = [(name, input_node(inputs[name][0])) for name in index.of_ops(INFERENCE_IDENTITIES - {"CheckNumerics"})
              if inputs[name]]
    grew = bool(passes)
    while grew:
        grew = False
        for name, source in passes:
            if name not in out and source in out:
                out.add(name)
                grew = True
    return out


def _candidate(name: str, op: str, texts: Sequence[str], constish: set[str], keep: set[str]) -> bool:
    """Worth evaluating: a foldable op whose data inputs are all constants (shape ops: any input)."""
    if op in SHAPE_OPS:
        return name not in keep
    if op not in EVALUATORS or name in keep:
        return False
    for text in texts:  # (the first is usually no constant: a 100,000-node graph's nodes are judged cheaply)
        if text not in constish and not text.startswith("^") and input_node(text) not in constish:
            return False
    return True


def _evaluate(work: Work, node: node_def_pb2.NodeDef) -> np.ndarray | None:
    import numpy as np

    refs = data_inputs(node)
    if node.op in SHAPE_OPS:
        if len(refs) != 1:
            return None
        shape = _static_shape(work, refs[0])
        if shape is None:
            return None
        out_type = dtypes.to_numpy(attr(node, "out_type").type) if "out_type" in node.attr else np.dtype(np.int32)
        if node.op == "Shape":
            return np.array(shape, dtype=out_type)
        if node.op == "Size":
            return np.array(int(np.prod(shape, dtype=np.int64)), dtype=out_type)
        return np.array(len(shape), dtype=np.int32)
    args = []
    for ref in refs:
        value = const_value(work, ref)
        if value is None:
            return None
        args.append(value)
    if not args:
        return None
    try:
        result = EVALUATORS[node.op](node, args)
    except (ValueError, TypeError, OverflowError):
        return None
    if result is None or result.dtype == object:
        return None
    declared = _declared_dtype(node)
    if declared is not None and dtypes.from_numpy(result.dtype) != declared:
        return None  # numpy would have given another dtype than TF's: not folded
    return result


def _declared_dtype(node: node_def_pb2.NodeDef) -> int | None:
    """The dtype TF gives the node's output (``T``; ``Tidx`` for Range, ``DstT`` for Cast)."""
    key = {"Range": "Tidx", "Cast": "DstT"}.get(node.op, "T")
    return int(dtypes.base(node.attr[key].type)) if key in node.attr and node.attr[key].type else None


def _static_shape(work: Work, ref: TensorRef) -> tuple[int, ...] | None:
    """A tensor's shape when fully known without running anything."""
    ref = resolve(work.index, ref)
    if ref.node not in work.index.inputs:
        return None
    node = work.node(ref.node)
    if node.op == "Const" and ref.port == 0:
        return tuple(work.const(node).shape)
    shape: tuple[int, ...] | None = None
    if node.op in ("Placeholder", "PlaceholderWithDefault") and "shape" in node.attr and ref.port == 0:
        if attr(node, "shape").shape.unknown_rank:
            return None
        shape = shape_of(attr(node, "shape").shape)
    elif "_output_shapes" in node.attr and ref.port < len(attr(node, "_output_shapes").list.shape):
        proto = attr(node, "_output_shapes").list.shape[ref.port]
        shape = None if proto.unknown_rank else shape_of(proto)
    if shape is None or any(d < 0 for d in shape):
        return None
    return shape


fold_constants = alone(fold_constants_in_place)
