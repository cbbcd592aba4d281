"""What the nodes of a graph are for: inputs, likely outputs, variables and their checkpoint keys.

Shared by inspect (to show them) and by the commands that need defaults (freeze's outputs, run's inputs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.graph import GraphIndex, as_index, parse_ref
from graphkit.io.ops import PLACEHOLDER_OPS, VARIABLE_OPS  # noqa: F401 -- roles' importers take them here too
from graphkit.io.passes import downstream
from graphkit.io.shapes import shape_of
from graphkit.proto import graph_pb2, meta_graph_pb2, node_def_pb2, variable_pb2

# ops that are never an inference output, whatever consumes them
_NOT_OUTPUT_OPS = frozenset({
    "NoOp", "Const", "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp",
    "AssignSubVariableOp", "SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice",
    "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec", "StringJoin", "VarIsInitializedOp",
    "IsVariableInitialized", "Assert", "Print", "PrintV2", "ControlTrigger", "DestroyResourceOp",
    "ScalarSummary", "HistogramSummary", "ImageSummary", "AudioSummary", "AudioSummaryV2", "MergeSummary",
    "TensorSummary", "TensorSummaryV2", "WriteSummary", "WriteScalarSummary", "FlushSummaryWriter",
    "StaticRegexFullMatch", "ReadVariableOp", "Enter", "Exit", "NextIteration", "LoopCond",
    "Switch", "Merge", "RefSwitch", "RefMerge", "Snapshot",
}) | VARIABLE_OPS | PLACEHOLDER_OPS
# saver, gradient, initializer and summary scopes, wherever they sit in a name (a renamed graph has them
# under a prefix: net/save/..., net/gradients/...)
_PLUMBING_SCOPE = re.compile(r"(^|/)(save(_\d+)?/|save_|gradients(_\d+)?/|gradients_|report_uninitialized|init_|"
                             r"summaries/)")
_NOT_OUTPUT_NAMES = re.compile(
    r"(^|/)(init|init_all_tables|group_deps|train(_op)?|train_step|global_step.*|switch_t|switch_f|pred_id)$")
_OPTIMIZER = re.compile(r"(^|/)(Adam|Momentum|GradientDescent|RMSProp|Adagrad|Adadelta|Ftrl|SGD|train)(_\d+)?(/|$)")
_HEAD_OPS = frozenset({"Softmax", "Sigmoid", "ArgMax", "ArgMin", "TopKV2", "LogSoftmax", "Tanh",
                       "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV4", "NonMaxSuppressionV5"})
_HEAD_NAME = re.compile(r"(output|pred|logit|prob|score|result|softmax|sigmoid|embedding)", re.I)


@dataclass
class Input:
    name: str
    op: str
    dtype: str
    shape: tuple[int, ...] | None
    has_default: bool = False


@dataclass
class Output:
    name: str
    op: str
    reason: str
    score: int = 0


@dataclass
class Variable:
    """A variable as the checkpoint keys it (a partitioned variable once, with its full shape)."""

    key: str
    dtype: int
    shape: tuple[int, ...] | None
    nodes: list[str] = field(default_factory=list)
    slices: dict[str, str] = field(default_factory=dict)  # part node -> slice spec, for partitioned variables
    label: str = ""  # TF2 SavedModels: a readable name (``dense/kernel``) where the key is an object path


def node_dtype(node: node_def_pb2.NodeDef) -> int:
    for key in ("dtype", "T", "DstT", "out_type"):
        if key in node.attr and node.attr[key].type:
            return int(node.attr[key].type)
    return 0


_BOOL_OPS = frozenset({"Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual", "LogicalAnd",
                       "LogicalOr", "LogicalNot", "IsFinite", "IsNan", "IsInf", "InTopK", "InTopKV2"})
_FIXED = {"DecodeJpeg": dtypes.DT_UINT8, "DecodeAndCropJpeg": dtypes.DT_UINT8, "DecodeBmp": dtypes.DT_UINT8,
          "DecodeGif": dtypes.DT_UINT8, "ReadFile": dtypes.DT_STRING, "Where": dtypes.DT_INT64,
          "Rank": dtypes.DT_INT32, "EncodeJpeg": dtypes.DT_STRING, "EncodePng": dtypes.DT_STRING}
_LIST_TYPES = ("out_types", "output_types", "Tout", "component_types", "dtypes", "Toutputs")


def output_dtype(node: node_def_pb2.NodeDef, port: int = 0) -> int | None:
    """The dtype of output ``port`` from the node's attrs (no op registry), or None when it cannot be told."""
    if node.op in _BOOL_OPS:
        return dtypes.DT_BOOL
    if node.op in _FIXED:
        return _FIXED[node.op]
    for key in _LIST_TYPES:
        if key in node.attr and node.attr[key].list.type:
            types = node.attr[key].list.type
            return int(types[port]) if port < len(types) else None
    if port > 0:
        extra = {"TopKV2": ("", dtypes.DT_INT32), "Unique": ("out_idx", 0), "UniqueV2": ("out_idx", 0),
                 "FusedBatchNormV3": ("U", 0), "FusedBatchNormV2": ("U", 0)}.get(node.op)
        if extra is not None:
            return int(node.attr[extra[0]].type) if extra[0] else extra[1]
    for key in ("dtype", "T", "DstT", "out_type", "output_type", "Tidx" if node.op == "Range" else "",
                "Tparams", "SrcT" if node.op == "Bitcast" else ""):
        if key and key in node.attr and node.attr[key].type:
            return int(node.attr[key].type)
    if node.op in ("Shape", "Size"):
        return dtypes.DT_INT32
    if node.op in ("ArgMax", "ArgMin"):
        return dtypes.DT_INT64
    return None


def output_shape(node: node_def_pb2.NodeDef, port: int = 0) -> tuple[int, ...] | None:
    """Output ``port``'s shape from ``_output_shapes`` (or a Placeholder's/Const's own), None when unknown."""
    shapes = node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else []
    if port < len(shapes):
        return shape_of(shapes[port])
    return node_shape(node) if port == 0 else None


def node_shape(node: node_def_pb2.NodeDef) -> tuple[int, ...] | None:
    if "shape" in node.attr and node.attr["shape"].HasField("shape"):
        return shape_of(node.attr["shape"].shape)
    if "_output_shapes" in node.attr and node.attr["_output_shapes"].list.shape:
        return shape_of(node.attr["_output_shapes"].list.shape[0])
    if node.op == "Const":
        return shape_of(node.attr["value"].tensor.tensor_shape)
    return None


def graph_inputs(graph: graph_pb2.GraphDef | Iterable[node_def_pb2.NodeDef],
                 meta_graph: meta_graph_pb2.MetaGraphDef | None = None) -> list[Input]:
    """Placeholders, in graph order (PlaceholderWithDefault ones are optional); with a meta graph, not the
    saver's filename placeholder (``saver_def.filename_tensor_name``)."""
    nodes = graph.node if isinstance(graph, graph_pb2.GraphDef) else graph
    legacy = isinstance(graph, graph_pb2.GraphDef) and graph.HasField("versions") and graph.versions.producer <= 21
    plumbing = _saver_nodes(meta_graph)
    return [
        Input(n.name, n.op, dtypes.name(node_dtype(n)), _placeholder_shape(n, legacy), n.op == "PlaceholderWithDefault")
        for n in nodes if n.op in PLACEHOLDER_OPS and not _PLUMBING_SCOPE.search(n.name)
        and n.name not in plumbing
    ]


def _placeholder_shape(node: node_def_pb2.NodeDef, legacy: bool) -> tuple[int, ...] | None:
    """A Placeholder's shape; in graphs of producer <= 21 an empty ``shape {}`` means unknown, as TF reads
    it (``core/ops/array_ops.cc``, Placeholder's shape function: "graph_def_version < 21")."""
    shape = node_shape(node)
    if legacy and shape == () and node.op == "Placeholder" and not node.attr["shape"].shape.unknown_rank:
        return None
    return shape


def _saver_nodes(meta_graph: meta_graph_pb2.MetaGraphDef | None) -> set[str]:
    """The nodes a MetaGraphDef's saver_def names: the filename placeholder, the save and restore ops."""
    if meta_graph is None or not meta_graph.HasField("saver_def"):
        return set()
    saver = meta_graph.saver_def
    return {parse_ref(t).node for t in (saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name)
            if t}


def _is_training_only(name: str, op: str) -> bool:
    return (op in _NOT_OUTPUT_OPS or bool(_PLUMBING_SCOPE.search(name))
            or bool(_NOT_OUTPUT_NAMES.search(name)) or bool(_OPTIMIZER.search(name))
            or op.startswith(("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")))


def likely_outputs(
    graph: graph_pb2.GraphDef | GraphIndex, meta_graph: meta_graph_pb2.MetaGraphDef | None = None
) -> list[Output]:
    """Nodes that are probably the graph's outputs, best first, each with the reason.

    Signature outputs first; then nodes nothing consumes that are not saver, initializer, summary or
    optimizer nodes, ranked up for output-like ops (Softmax, ArgMax...) and names, down when they
    depend on no placeholder.
    """
    index = as_index(graph)
    ops = index.ops
    found: dict[str, Output] = {}
    if meta_graph is not None:
        for key, sig in sorted(meta_graph.signature_def.items()):
            if key.startswith("__"):  # __saved_model_init_op: loading plumbing, not an output
                continue
            for out_key, info in sorted(sig.outputs.items()):
                if info.name:
                    target = parse_ref(info.name).node
                    if target in index.nodes and target not in found:
                        found[target] = Output(target, ops[target], f"signature '{key}' output '{out_key}'", 100)
    if meta_graph is not None and len(meta_graph.object_graph_def.nodes) > 1 and found:
        return list(found.values())  # a TF2 SavedModel: what the signatures return is all it computes
    fed = _fed_by_placeholder(index)
    plumbing = _saver_nodes(meta_graph)
    loss_side = _loss_side(index)
    sinks = [name for name, op in ops.items() if name not in found and name not in plumbing
             and name not in loss_side and not _is_training_only(name, op) and not index.is_consumed(name)]
    frontier: list[str] = []
    if loss_side and not any(fed is None or name in fed for name in sinks):
        # a training graph whose only sinks are its loss: the outputs are what only the loss reads (pred)
        frontier = [name for name, op in ops.items() if name not in loss_side and name not in found
                    and op not in PLACEHOLDER_OPS and not _is_training_only(name, op) and index.is_consumed(name)
                    and all(u in loss_side or _trains(u, ops[u]) for u in
                            [u for u, _ in index.consumers.get(name, [])] + index.control_consumers.get(name, []))]
    for name in [*sinks, *frontier]:
        op = ops[name]
        score = 10
        reasons = ["nothing consumes it"] if name in sinks else ["only the loss and training read it"]
        if op in _HEAD_OPS:
            score += 3
            reasons.append(f"{op} is a typical output op")
        if _HEAD_NAME.search(name.rsplit("/", 1)[-1]):
            score += 2
            reasons.append("output-like name")
        if fed is not None and name not in fed:
            score -= 5
            reasons.append("depends on no placeholder")
        found[name] = Output(name, op, "; ".join(reasons), score)
    order = {name: i for i, name in enumerate(ops)}
    return sorted(found.values(), key=lambda o: (-o.score, order.get(o.name, 0)))


def _trains(name: str, op: str) -> bool:
    """A node of the training machinery: gradients, the optimizer and its updates."""
    return (bool(re.search(r"(^|/)gradients(_\d+)?(/|$)", name)) or bool(_OPTIMIZER.search(name))
            or op.startswith(("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply"))
            or op in ("Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp",
                      "AssignSubVariableOp"))


def label_placeholders(graph: graph_pb2.GraphDef | GraphIndex) -> set[str]:
    """Placeholders that feed only the training loss: the labels/targets of a training graph.

    A placeholder P is a label when the graph trains (it has optimizer or gradient nodes), no weight is read
    on P's own side (nodes that depend on P and on no other placeholder), and P meets, in some node, another
    placeholder whose own side does read weights (the model's input): ``loss(pred(X; W), Y)``. Placeholders
    with a default (``is_training``, ``keep_prob``) are flags, never labels. Inference graphs have none."""
    index = as_index(graph)
    ops = index.ops
    data = [n for n, op in ops.items() if op in ("Placeholder", "PlaceholderV2")]
    if len(data) < 2 or not any(_OPTIMIZER.search(n) or op.startswith(("Apply", "ResourceApply"))
                                for n, op in ops.items()):
        return set()
    reach = {p: downstream(index, [p]) for p in data}
    weighted = {p: _reads_weights(index, reach[p] - set().union(*(reach[q] for q in data if q != p)))
                for p in data}
    return {p for p in data if not weighted[p]
            and any(weighted[q] and reach[p] & reach[q] for q in data if q != p)}


def _reads_weights(index: GraphIndex, nodes: set[str]) -> bool:
    ops = index.ops
    for name in nodes:
        for text in index.inputs[name]:
            src = text.lstrip("^").partition(":")[0]
            if ops.get(src) in VARIABLE_OPS or ops.get(src) == "ReadVariableOp":
                return True
            if ops.get(src) == "Identity" and any(ops.get(t.partition(":")[0]) in VARIABLE_OPS
                                                  for t in index.inputs[src]):
                return True
    return False


def _loss_side(index: GraphIndex) -> set[str]:
    """Nodes that need a label placeholder: the loss and metrics of a training graph, never outputs."""
    labels = label_placeholders(index)
    return downstream(index, labels) if labels else set()


def _fed_by_placeholder(index: GraphIndex) -> set[str] | None:
    """Nodes downstream of a placeholder (None if the graph has no placeholder)."""
    starts = [name for name, op in index.ops.items() if op in PLACEHOLDER_OPS]
    return downstream(index, starts) if starts else None


def clear_output(outputs: list[Output]) -> Output | None:
    """The single clear best candidate, if the ranking has one."""
    if len(outputs) == 1 or (len(outputs) > 1 and outputs[0].score > outputs[1].score):
        return outputs[0]
    return None


def clear_outputs(outputs: list[Output]) -> list[Output]:
    """Every output the ranking is sure of: signature outputs, else every sink fed by a placeholder (a model
    with several heads has several); else the single clear best candidate, if any."""
    signature = [o for o in outputs if o.score >= 100]
    if signature:
        return signature
    sinks = [o for o in outputs if o.score >= 10]
    if sinks:
        return sinks
    best = clear_output(outputs)
    return [best] if best is not None else []


# ---- variables -------------------------------------------------------------------------------------

_PART = re.compile(r"/part_\d+$")


def graph_variables(
    graph_def: graph_pb2.GraphDef, meta_graph: meta_graph_pb2.MetaGraphDef | None = None
) -> list[Variable]:
    """The graph's variables keyed as its checkpoint keys them (docs/formats.md section 2)."""
    if meta_graph is not None and len(meta_graph.object_graph_def.nodes) > 1:
        return _object_graph_variables(graph_def, meta_graph)
    index = GraphIndex(graph_def)
    # the saver's keys first: they are what restore reads, whatever the nodes are called now (a renamed
    # graph keeps its saver's tensor_names, so it still restores the original checkpoint)
    found: dict[str, Variable] = _saver_variables(index)
    covered = {n for v in found.values() for n in v.nodes}
    defs = variable_defs(meta_graph) if meta_graph is not None else []
    for vdef in defs:
        node_name = parse_ref(vdef.variable_name).node
        node = index.nodes.get(node_name)
        if node is None or node.op not in VARIABLE_OPS or node_name in covered:
            continue
        info = vdef.save_slice_info_def
        key = info.full_name or node_name
        var = found.setdefault(key, Variable(key, node_dtype(node), tuple(info.full_shape) if info.full_name
                                             else node_shape(node)))
        if node_name not in var.nodes:
            var.nodes.append(node_name)
            if info.full_name:
                var.slices[node_name] = " ".join(map(str, info.full_shape)) + " " + ":".join(
                    f"{o},{n}" for o, n in zip(info.var_offset, info.var_shape, strict=True))
    covered = {n for v in found.values() for n in v.nodes}
    for node in graph_def.node:  # variables no collection or saver names (e.g. a bare graph.pb)
        if node.op in VARIABLE_OPS and node.name not in covered:
            key = _PART.sub("", node.name)
            var = found.setdefault(key, Variable(key, node_dtype(node), node_shape(node)))
            var.nodes.append(node.name)
    return sorted(found.values(), key=lambda v: v.key)


VARIABLE_COLLECTIONS = ("variables", "local_variables", "model_variables", "trainable_variables")


def variable_defs(meta_graph: meta_graph_pb2.MetaGraphDef) -> list[variable_pb2.VariableDef]:
    """The VariableDefs of the meta graph's variable collections, each variable once."""
    out = []
    seen = set()
    for key in VARIABLE_COLLECTIONS:
        if key in meta_graph.collection_def:
            vdefs = parse_variable_defs(meta_graph.collection_def[key])
            if vdefs is None:
                raise GraphkitError(f"the meta graph's '{key}' collection holds an entry that is not a valid "
                                    "VariableDef; the file is corrupt")
            for vdef in vdefs:
                if vdef.variable_name not in seen:
                    seen.add(vdef.variable_name)
                    out.append(vdef)
    return out


def parse_variable_defs(collection: meta_graph_pb2.CollectionDef) -> list[variable_pb2.VariableDef] | None:
    """A bytes_list collection's entries as VariableDefs, or None when some do not decode as one (another
    kind of collection, or corrupt bytes)."""
    try:
        return [variable_pb2.VariableDef.FromString(raw) for raw in collection.bytes_list.value]
    except DecodeError:
        return None


def _saver_variables(index: GraphIndex) -> dict[str, Variable]:
    """Keys from a TF1 saver subgraph: SaveV2(prefix, tensor_names, shape_and_slices, *tensors)."""
    found: dict[str, Variable] = {}
    for name, op in index.ops.items():
        if op != "SaveV2":
            continue
        node = index.nodes[name]
        if len(node.input) < 3:
            continue
        names_node = index.nodes.get(parse_ref(node.input[1]).node)
        specs_node = index.nodes.get(parse_ref(node.input[2]).node)
        if not names_node or not specs_node or names_node.op != "Const" or specs_node.op != "Const":
            continue
        try:
            names = [s.decode() for s in names_node.attr["value"].tensor.string_val]
            specs = [s.decode() for s in specs_node.attr["value"].tensor.string_val]
        except UnicodeDecodeError:
            raise GraphkitError(f"the saver's key list '{names_node.name}' holds a name that is not UTF-8; the "
                                "file is corrupt") from None
        for key, spec, src in zip(names, specs, node.input[3:], strict=False):
            var_node = _variable_behind(index, parse_ref(src).node)
            if var_node is None:
                continue
            full = tuple(int(d) for d in spec.split()[:-1]) if spec else node_shape(var_node)
            var = found.setdefault(key, Variable(key, node_dtype(var_node), full))
            var.nodes.append(var_node.name)
            if spec:
                var.slices[var_node.name] = spec
    return found


def _variable_behind(index: GraphIndex, name: str) -> node_def_pb2.NodeDef | None:
    """Follow Identity/ReadVariableOp chains back to a variable op."""
    for _ in range(8):
        node = index.nodes.get(name)
        if node is None:
            return None
        if node.op in VARIABLE_OPS:
            return node
        if node.op not in ("Identity", "ReadVariableOp", "Snapshot") or not node.input:
            return None
        name = parse_ref(node.input[0]).node
    return None


def _object_graph_variables(graph_def: graph_pb2.GraphDef, meta_graph: meta_graph_pb2.MetaGraphDef) -> list[Variable]:
    """TF2 SavedModel: each main-graph handle keyed by the restore function (io/savedmodel.py), labelled
    with a readable name from the object graph."""
    from graphkit.io.objects import escape
    from graphkit.io.savedmodel import object_paths, readable_names, restore_keys

    index = GraphIndex(graph_def)
    paths = {"/".join(escape(part) for part in path.split("/")): i
             for i, path in object_paths(meta_graph).items() if path}
    labels = readable_names(meta_graph)
    found: dict[str, Variable] = {}
    for handle, key in sorted(restore_keys(graph_def, meta_graph).items()):
        node = index.nodes.get(handle)
        if node is None:
            continue
        var = found.setdefault(key, Variable(key, node_dtype(node), node_shape(node)))
        var.nodes.append(handle)
        obj = paths.get(key.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE"))
        var.label = labels.get(obj, "") if obj is not None else ""
    return sorted(found.values(), key=lambda v: v.key)


def pick_signature(meta_graph: meta_graph_pb2.MetaGraphDef, signature: str | None,
                   path: object = None) -> str:
    """The signature to use: the one asked for, else ``serving_default``, else the only one (TF Serving's
    default); otherwise an error listing them."""
    keys = [k for k in meta_graph.signature_def if not k.startswith("__")]
    key = signature or ("serving_default" if "serving_default" in keys else (keys[0] if len(keys) == 1 else None))
    if key is None or key not in meta_graph.signature_def:
        what = f"no signature '{signature}'" if signature else "several signatures"
        raise GraphkitError(f"{what}; choose one with --signature (this model has: {', '.join(sorted(keys))})",
                            path if isinstance(path, (str, os.PathLike)) else None)
    return key


def default_outputs(graph: graph_pb2.GraphDef | GraphIndex, meta_graph: meta_graph_pb2.MetaGraphDef | None = None,
                    path: str | os.PathLike[str] | None = None) -> list[str]:
    """The outputs a command takes when none are named: every clear candidate (:func:`clear_outputs`), or an
    error listing the candidates."""
    ranked = likely_outputs(graph, meta_graph)
    chosen = clear_outputs(ranked)
    if not chosen:
        listed = ", ".join(f"{o.name} ({o.op})" for o in ranked[:8]) or "none"
        raise GraphkitError(f"cannot tell the outputs apart; name them with --outputs (candidates: {listed})", path)
    return [o.name for o in chosen]
