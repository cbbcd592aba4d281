"""``graphkit set-batch``: make the batch dimension of the inputs unknown (or fix it), including the
constants that hard-code it, so the graph runs at any batch size and gives per sample what it gave before."""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from graphkit.errors import GraphkitError, about
from graphkit.io import Graph, GraphIndex, dtypes, parse_ref
from graphkit.io.graph import unique_name
from graphkit.io.roles import PLACEHOLDER_OPS, node_shape
from graphkit.io.save import Progress
from graphkit.io.spec import parse_spec
from graphkit.io.spec import split_names as names
from graphkit.io.tensors import const_node, shape_proto, splat_scalar, to_numpy
from graphkit.proto import graph_pb2, node_def_pb2
from graphkit.surgery.core import SurgeryReport, drop_stale_shapes, finish, loaded_names, open_graph

_ELEMENTWISE = frozenset({
    "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "DivNoNan", "Maximum", "Minimum", "SquaredDifference", "Select",
    "SelectV2", "Pow", "Identity", "Cast", "Neg", "Abs", "Relu", "Relu6", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt",
    "Rsqrt", "Square", "Floor", "FloorDiv", "FloorMod", "Greater", "GreaterEqual", "Less", "LessEqual", "Equal",
    "NotEqual", "LogicalAnd", "LogicalOr", "LogicalNot"})
# op -> index of the input that is a shape (its element 0 is the batch)
_SHAPE_OPERAND = {"Reshape": 1, "Fill": 0, "BroadcastTo": 1, "Tile": 1, "RandomUniform": 0, "RandomStandardNormal": 0,
                  "TruncatedNormal": 0, "Empty": 0, "Zeros": 0}


def set_batch(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    size: int | None = None,
    inputs: list[str] | None = None,
    tags: list[str] | None = None,
    text: bool | None = None,
    progress: Progress | None = None,
) -> SurgeryReport:
    """Set dim 0 of the inputs (default: those with a batch, :func:`batched_inputs`) to unknown, or to
    ``size``. Downstream constants that hard-code the old batch B are rewritten: shape operands of
    Reshape/Fill/BroadcastTo/Tile (B -> -1 in a Reshape, else the batch read from the input at run time, or
    ``size``), StridedSlice/Slice bounds that end at B, and constant tensors of batch B holding one repeated
    value. Anything else holding B
    that the outputs use is reported by name (``notes``), never silently left."""
    with about(model_path):
        if size is not None and size < 1:
            raise GraphkitError(f"--size must be at least 1, not {size}")
        model = open_graph(model_path, tags)
        assert model.graph is not None
        gd = graph_pb2.GraphDef()
        gd.CopyFrom(model.graph.graph_def)
        index = GraphIndex(gd)
        report = SurgeryReport("set-batch")
        specs = {s.name: s for s in (parse_spec(n) for n in names(inputs))}
        left: list[tuple[str, str]] = []
        if specs:
            chosen = [index.node(name) for name in specs]
        else:
            chosen, left = batched_inputs(index)
            report.notes += [f"left '{name}' alone: {why} (name it with --inputs to change it)" for name, why in left]
        if not chosen:
            why = "; ".join(f"{name}: {reason}" for name, reason in left) or "the graph has no Placeholder"
            raise GraphkitError(f"no input has a batch dimension ({why}); name the inputs to change with --inputs",
                                model.path)
        batches: set[int] = set()
        for node in chosen:
            given = specs.get(node.name)
            shape = given.shape if given is not None and given.shape is not None else node_shape(node)
            if node.op not in PLACEHOLDER_OPS:
                raise GraphkitError(f"'{node.name}' ({node.op}) is not a Placeholder; set-batch changes graph inputs")
            if not shape:
                raise GraphkitError(f"input '{node.name}' has {'unknown rank' if shape is None else 'no dimensions'}; "
                                    f"give its shape, e.g. --inputs '{node.name}[?,224,224,3]'")
            if shape[0] >= 0:
                batches.add(shape[0])
            new_shape = (size if size is not None else -1, *shape[1:])
            node.attr["shape"].shape.CopyFrom(shape_proto(new_shape))
            if "_output_shapes" in node.attr:
                node.attr["_output_shapes"].list.shape[0].CopyFrom(shape_proto(new_shape))
            report.rewritten.append(node.name)
        region = _downstream(index, [n.name for n in chosen])
        drop_stale_shapes(gd, [n for n in region if n not in report.rewritten])
        if len(batches) > 1:
            raise GraphkitError(f"the inputs have different batch sizes ({sorted(batches)}); set them one at a time "
                                "with --inputs")
        if batches:
            old = batches.pop()
            if size != old:
                _rewrite_constants(gd, index, region, chosen, old, size, report)
                for node in gd.node:
                    if node.name in report.rewritten:
                        node.attr.pop("_output_shapes", None)
        else:
            report.notes.append("the batch dimension was already unknown; no constants rewritten")
        graph = Graph(gd, dict(model.graph.external))
        return finish(model, graph, out, report, before=loaded_names(model), text=text, progress=progress)


def batched_inputs(index: GraphIndex) -> tuple[list[node_def_pb2.NodeDef], list[tuple[str, str]]]:
    """The Placeholders whose dim 0 is a batch, and the others with why: a batch input has rank >= 2 (a
    rank-1 input is a vector of settings, as mtcnn's ``thresholds [3]``, or ambiguous), the graph does not
    add a batch in front of it (an ``ExpandDims`` at axis 0: mtcnn's ``input [?,?,3]`` is one HWC image),
    and its dim 0, when known, is the same B as the other batch inputs'."""
    chosen: list[node_def_pb2.NodeDef] = []
    left: list[tuple[str, str]] = []
    for name, op in index.ops.items():
        if op not in PLACEHOLDER_OPS:
            continue
        node = index.nodes[name]
        shape = node_shape(node)
        if shape is None:
            left.append((name, "unknown rank"))
        elif len(shape) < 2:
            left.append((name, f"rank {len(shape)}: no batch dimension to tell apart"))
        elif _expanded_at_0(index, name):
            left.append((name, "the graph adds the batch itself (ExpandDims at axis 0)"))
        else:
            chosen.append(node)
    known = [s[0] for s in (node_shape(n) for n in chosen) if s and s[0] >= 0]
    if known:
        common = max(set(known), key=known.count)
        odd = [n for n in chosen if (node_shape(n) or (-1,))[0] not in (-1, common)]
        left += [(n.name, f"dim 0 is {(node_shape(n) or (0,))[0]}, not the batch {common} of the others") for n in odd]
        chosen = [n for n in chosen if n not in odd]
    return chosen, left


def _expanded_at_0(index: GraphIndex, name: str) -> bool:
    for user, pos in index.consumers.get(name, []):
        node = index.nodes[user]
        if node.op == "ExpandDims" and pos == 0 and len(node.input) > 1:
            dim = index.nodes.get(node.input[1].partition(":")[0])
            if dim is not None and dim.op == "Const":
                axis = to_numpy(dim.attr["value"].tensor).reshape(-1).tolist()
                rank = len(node_shape(index.nodes[name]) or ())
                if axis in ([0], [-rank - 1]):
                    return True
    return False


def _downstream(index: GraphIndex, starts: list[str]) -> dict[str, str]:
    """Every node reachable from ``starts`` through data edges -> the first start that reaches it."""
    reach: dict[str, str] = {s: s for s in starts}
    queue = deque(starts)
    while queue:
        name = queue.popleft()
        for user, _ in index.consumers.get(name, []):
            if user not in reach:
                reach[user] = reach[name]
                queue.append(user)
    return reach


class _Builder:
    """New nodes for the rewrites; the batch of an input read at run time, built once per input and dtype."""

    def __init__(self, gd: graph_pb2.GraphDef, names: set[str]) -> None:
        self.gd, self.names = gd, names
        self.batch_vectors: dict[tuple[str, int], str] = {}

    def const(self, base: str, value: np.ndarray) -> str:
        node = self.gd.node.add()
        node.CopyFrom(const_node(unique_name(base, self.names), value))
        return node.name

    def add(self, base: str, op: str, inputs: list[str], **types: int) -> node_def_pb2.NodeDef:
        node = self.gd.node.add(name=unique_name(base, self.names), op=op)
        node.input.extend(inputs)
        for key, code in types.items():
            node.attr[key].type = code  # type: ignore[assignment]
        return node

    def batch_vector(self, source: str, code: int) -> str:
        """int32/int64 [1] tensor holding dim 0 of ``source`` at run time."""
        key = (source, code)
        if key not in self.batch_vectors:
            np_type = dtypes.to_numpy(code)
            src = next(n for n in self.gd.node if n.name == source)
            shape = self.add(f"{source}/batch/shape", "Shape", [source], out_type=code, T=int(src.attr["dtype"].type))
            sl = self.add(f"{source}/batch", "StridedSlice",
                          [shape.name, self.const(f"{source}/batch/begin", np.array([0], np_type)),
                           self.const(f"{source}/batch/end", np.array([1], np_type)),
                           self.const(f"{source}/batch/strides", np.array([1], np_type))], T=code, Index=code)
            for mask in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"):
                sl.attr[mask].i = 0
            self.batch_vectors[key] = sl.name
        return self.batch_vectors[key]


@dataclass
class _Rewrite:
    """What every rule sees: the graph's index, the new nodes' builder, the region (node -> the input it
    descends from), the old batch and the new size (None: unknown), and the Consts already rewritten."""

    index: GraphIndex
    build: _Builder
    region: dict[str, str]
    old: int
    size: int | None
    handled: set[str] = field(default_factory=set)


@dataclass
class _Outcome:
    """A rule's result for one node: how many of its operands it rewrote, and what it could not prove."""

    rewrites: int = 0
    notes: list[str] = field(default_factory=list)


def _shape_operand_rule(ctx: _Rewrite, name: str, node: node_def_pb2.NodeDef, source: str) -> _Outcome:
    """The shape operand of Reshape/Fill/BroadcastTo/Tile/random ops, a Const starting with B: B -> -1 in a
    Reshape, else the batch read from ``source`` at run time, or the new size."""
    operand = _SHAPE_OPERAND.get(node.op)
    if operand is None or operand >= len(node.input):
        return _Outcome()
    ref = parse_ref(node.input[operand])
    src = ctx.index.nodes.get(ref.node)
    if src is None or src.op != "Const" or ref.node in ctx.region:
        return _Outcome()
    value = to_numpy(src.attr["value"].tensor)
    if value.ndim != 1 or not value.size or value[0] != ctx.old:
        return _Outcome()
    node.input[operand] = _new_shape(ctx.build, node, value, ctx.size, source)
    ctx.handled.add(ref.node)
    return _Outcome(1)


def _slice_rule(ctx: _Rewrite, name: str, node: node_def_pb2.NodeDef, source: str) -> _Outcome:
    """A StridedSlice/Slice of axis 0 that ends at B (see :func:`_fix_slice`)."""
    if node.op in ("StridedSlice", "Slice") and len(node.input) >= 3 and _fix_slice(
            ctx.build, ctx.index, node, ctx.old, ctx.size, ctx.region):
        return _Outcome(1)
    return _Outcome()


def _const_operand_rule(ctx: _Rewrite, name: str, node: node_def_pb2.NodeDef, source: str) -> _Outcome:
    """Const operands of batch B: one repeated value into an elementwise op becomes Fill([batch, ...], value)
    (a splat stays a splat); per-sample values, or an int Const holding B fed to Pack/ConcatV2, are
    reported, never silently left."""
    out = _Outcome()
    for i, text in enumerate(node.input):
        ref = parse_ref(text)
        src = ctx.index.nodes.get(ref.node)
        if ref.control or src is None or src.op != "Const" or ref.node in ctx.handled or (
                node.op in _SHAPE_OPERAND and i == _SHAPE_OPERAND[node.op]):
            continue
        value_shape = tuple(d.size for d in src.attr["value"].tensor.tensor_shape.dim)
        # rank >= 2 only: a rank-1 constant of length B is more likely a per-channel vector
        if len(value_shape) >= 2 and value_shape[0] == ctx.old and ctx.old > 1 and node.op in _ELEMENTWISE:
            scalar = _one_value(src)
            if scalar is not None:
                node.input[i] = _splat(ctx.build, src, value_shape, scalar, ctx.size, source)
                out.rewrites += 1
            else:
                out.notes.append(f"not proved safe: '{ref.node}' (Const {list(value_shape)}) has the old batch "
                                 f"{ctx.old} as dim 0 with per-sample values; '{name}' reads it")
        elif src.attr["dtype"].type in (dtypes.DT_INT32, dtypes.DT_INT64) and node.op in ("Pack", "ConcatV2") \
                and ctx.old > 1 and ctx.old in to_numpy(src.attr["value"].tensor).reshape(-1).tolist():
            out.notes.append(f"not proved safe: '{ref.node}' holds {ctx.old} (the old batch?) and feeds "
                             f"'{name}' ({node.op}); check it")
    return out


# each rule looks at one node of the region (or a constant branch feeding it) and rewrites or reports
_RULES = (_shape_operand_rule, _slice_rule, _const_operand_rule)


def _one_value(src: node_def_pb2.NodeDef) -> np.ndarray | None:
    """The one value a Const repeats (a splat's without expanding it), or None when its values differ."""
    tensor = src.attr["value"].tensor
    scalar = splat_scalar(tensor)
    if scalar is not None:
        return scalar
    flat = to_numpy(tensor).reshape(-1)
    return flat[:1].reshape(()) if flat.size and bool((flat == flat[0]).all()) else None


def _constant_feeders(index: GraphIndex, region: dict[str, str]) -> dict[str, str]:
    """Constant-only branches that an elementwise region node combines with the batch (``zeros([B, n]) +
    0.5``, a Tile or Fill of constants) hard-code B too: each such node -> the input its region node
    descends from."""
    feeders: dict[str, str] = {}
    for name in list(region):
        if index.nodes[name].op not in _ELEMENTWISE:
            continue
        stack = [parse_ref(t).node for t in index.nodes[name].input if not t.startswith("^")]
        while stack:
            producer = stack.pop()
            if producer in feeders or producer in region or producer not in index.nodes:
                continue
            op = index.nodes[producer].op
            if op in _SHAPE_OPERAND or op in _ELEMENTWISE:
                feeders[producer] = region[name]
                if op in _ELEMENTWISE:
                    stack.extend(parse_ref(t).node for t in index.nodes[producer].input if not t.startswith("^"))
    return feeders


def _rewrite_constants(gd: graph_pb2.GraphDef, index: GraphIndex, region: dict[str, str],
                       chosen: list[node_def_pb2.NodeDef], old: int, size: int | None,
                       report: SurgeryReport) -> None:
    """Run every rule over the region and its constant feeders, in graph order."""
    ctx = _Rewrite(index, _Builder(gd, set(index.nodes)), region, old, size)
    feeders = _constant_feeders(index, region)
    inputs = {n.name for n in chosen}
    for name in [*region, *feeders]:
        if name in inputs:
            continue
        node, source = index.nodes[name], region.get(name) or feeders[name]
        for rule in _RULES:
            outcome = rule(ctx, name, node, source)
            report.rewritten += [name] * outcome.rewrites
            report.notes += outcome.notes


def _new_shape(build: _Builder, node: node_def_pb2.NodeDef, value: np.ndarray, size: int | None,
               source: str) -> str:
    new = value.copy()
    if size is not None:
        new[0] = size
        return build.const(f"{node.name}/shape_batch", new)
    if node.op == "Reshape" and -1 not in value.tolist():
        new[0] = -1
        return build.const(f"{node.name}/shape_batch", new)
    code = dtypes.from_numpy(value.dtype)
    rest = build.const(f"{node.name}/shape_rest", value[1:])
    axis = build.const(f"{node.name}/shape_axis", np.array(0, np.int32))
    concat = build.add(f"{node.name}/shape_batch", "ConcatV2", [build.batch_vector(source, code), rest, axis],
                       T=code, Tidx=dtypes.DT_INT32)
    concat.attr["N"].i = 2
    return concat.name


def _splat(build: _Builder, src: node_def_pb2.NodeDef, value_shape: tuple[int, ...], value: np.ndarray,
           size: int | None, source: str) -> str:
    """A constant of batch B with one repeated ``value`` -> Fill([batch, ...rest], value)."""
    shape = np.array(value_shape, np.int32)
    dims = _new_shape(build, node_def_pb2.NodeDef(name=src.name, op="Fill"), shape, size, source)
    scalar = build.const(f"{src.name}/value", np.asarray(value).reshape(()))
    fill = build.add(f"{src.name}/batch_fill", "Fill", [dims, scalar], T=src.attr["dtype"].type,
                     index_type=dtypes.DT_INT32)
    return fill.name


def _fix_slice(build: _Builder, index: GraphIndex, node: node_def_pb2.NodeDef, old: int, size: int | None,
               region: dict[str, str]) -> bool:
    """StridedSlice ending at B on axis 0 (begin 0, stride 1): end_mask bit 0 (or end = size). Slice of size B
    from 0: size -1 (or size)."""
    consts = []
    for text in node.input[1:4]:
        src = index.nodes.get(parse_ref(text).node)
        if src is None or src.op != "Const" or src.name in region:
            return False
        consts.append(to_numpy(src.attr["value"].tensor))
    begin, end = consts[0], consts[1]
    if begin.ndim != 1 or not begin.size or begin[0] != 0 or end[0] != old:
        return False
    if node.op == "StridedSlice":
        if consts[2][0] != 1 or node.attr["begin_mask"].i & 1 or node.attr["shrink_axis_mask"].i & 1:
            return False
        if size is None:
            node.attr["end_mask"].i |= 1
        else:
            new = end.copy()
            new[0] = size
            node.input[2] = build.const(f"{node.name}/end_batch", new)
        return True
    new = end.copy()
    new[0] = -1 if size is None else size
    node.input[2] = build.const(f"{node.name}/size_batch", new)
    return True
