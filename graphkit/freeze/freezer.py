"""``graphkit freeze``: a checkpoint-backed graph to a frozen GraphDef, without TensorFlow.

TF's algorithm (docs/formats.md section 3, convert_to_constants.py), done on the GraphDef directly:
prune to the outputs (extract_sub_graph), then every variable op on the path becomes a Const holding the
checkpoint's value, ReadVariableOp becomes Identity, ResourceGather(Nd) becomes GatherV2/GatherNd, and the
dtype of Identity/Enter/Switch/Merge... chains that carried a resource handle is set to the value's.
Variables read inside functions (the bodies of ``If``/``While`` in graphs built under TF 2.x, the
signature functions of TF2 SavedModels) are followed into those functions (resources.py); TF2 SavedModels'
calls are inlined and their ends named by the signature's keys (tf2.py, io/inline.py); ``If``/``While``/``Case``
stay functional, with ``_lower_using_switch_merge`` false, as TF's ``lower_control_flow=False``.
Training updates that survived pruning are handled deterministically: update ops reached only through
control inputs (batch norm's forced moving-average updates, ``control_dependencies([train_op])``) are dropped
with those control edges -- a frozen graph has no state to update, and no output's value depends on them in
a single run; ``Assign``/``AssignAdd``/``AssignSub`` whose *value* is used become ``Identity``/``Add``/``Sub``
(the value a session run computes). Any other update op whose value is used is an error. Every problem
(missing variable, shape or dtype mismatch, missing shard, such update ops, a training op named as output)
is collected and reported at once, before anything is written. Large weights are not copied: each Const's
bytes stream from the mmapped checkpoint to the output file.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from dataclasses import dataclass, field

import numpy as np

from graphkit.errors import GraphkitError, about
from graphkit.freeze import tf2
from graphkit.freeze.branches import keep_control_flow_functional_in_place, prune_unused_branch_outputs_in_place
from graphkit.freeze.resources import freeze_resources_in_place
from graphkit.io import Graph, GraphIndex, Model, dtypes, load, parse_ref, save_graph
from graphkit.io.checkpoint import Checkpoint
from graphkit.io.checks import check_importable, unknown_ops_note
from graphkit.io.graph import FileSlice, closest
from graphkit.io.loader import attach_checkpoint
from graphkit.io.ops import HANDLE_FORWARDING
from graphkit.io.passes import drop_unused_library, extract_subgraph
from graphkit.io.roles import VARIABLE_OPS, default_outputs, graph_variables, pick_signature
from graphkit.io.save import Progress, check_output, serialized_size
from graphkit.io.savedmodel import is_tf2
from graphkit.io.spec import split_names as _names
from graphkit.io.tensors import from_numpy, shape_proto
from graphkit.proto import graph_pb2, node_def_pb2
from graphkit.runtime.difference import Check, Difference, as_check, difference, refuse_differences

PROTOBUF_LIMIT = (1 << 31) - 1
_UPDATE_OPS = re.compile(r"^(Assign|AssignAdd|AssignSub|ScatterU?[A-Za-z]*|Apply[A-Za-z]+|ResourceApply[A-Za-z]+|"
                         r"AssignVariableOp|AssignAddVariableOp|AssignSubVariableOp|ResourceScatter[A-Za-z]+)$")


@dataclass
class FreezeReport:
    """What freeze did; the CLI prints it and tests assert it."""

    output_path: str
    outputs: list[str]
    nodes_before: int
    nodes_after: int
    frozen: list[str] = field(default_factory=list)  # checkpoint keys turned into constants
    kept_variables: list[str] = field(default_factory=list)
    dropped_updates: list[str] = field(default_factory=list)  # update ops removed with their control edges
    specialized: list[str] = field(default_factory=list)  # "function -> its copy for the frozen arguments"
    signature: str = ""  # TF2 SavedModels: the signature frozen, and its ends by key
    input_names: dict[str, str] = field(default_factory=dict)  # input key -> Placeholder
    output_names: dict[str, str] = field(default_factory=dict)  # output key -> node
    inlined: list[str] = field(default_factory=list)  # "caller (function)"
    kept_calls: list[str] = field(default_factory=list)  # calls left in place, with why
    init_op: str = ""  # a NoOp to run once before inference (it fills the hash tables), or ""
    pruned_outputs: list[str] = field(default_factory=list)  # If/Case outputs nothing reads (gradient intermediates)
    weight_bytes: int = 0
    bytes_written: int = 0
    verified: list[Difference] = field(default_factory=list)  # per output, with verify=True
    notes: list[str] = field(default_factory=list)  # what the user should know (ops TF does not define)


def _selected(key: str, nodes: list[str], patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pat) for pat in patterns for name in [key, *nodes])


def resolve_source(
    src: str | os.PathLike[str] | None,
    graph: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    tags: list[str] | None = None,
) -> Model:
    """The graph and the checkpoint to freeze, from any accepted combination of inputs."""
    if graph is not None:
        model = load(graph, tags=tags)
        if model.graph is None:
            raise GraphkitError("--graph must name a GraphDef or MetaGraphDef (.pb, .pbtxt, .meta)", graph)
        ckpt_path = checkpoint or src
        if ckpt_path is None:
            raise GraphkitError("--graph needs --checkpoint (the variables' values)", graph)
        ckpt_model = load(ckpt_path)
        if ckpt_model.checkpoint is None:
            raise GraphkitError("not a checkpoint", ckpt_path)
        model.checkpoint = ckpt_model.checkpoint
        model.files += ckpt_model.checkpoint.files
        return model
    if src is None:
        raise GraphkitError("give a checkpoint, a .meta file, a SavedModel folder, or --graph with --checkpoint")
    model = load(src, tags=tags)
    if checkpoint is not None:
        ckpt = load(checkpoint).checkpoint
        if ckpt is None:
            raise GraphkitError("not a checkpoint", checkpoint)
        model.checkpoint = ckpt
        model.files += ckpt.files
    else:
        attach_checkpoint(model)
    graph_def = model.require_graph("pass the graph with --graph graph.pb|graph.pbtxt").graph_def
    if model.checkpoint is None and any(n.op in VARIABLE_OPS for n in graph_def.node):
        raise GraphkitError("the graph has variables but no checkpoint was found; pass --checkpoint", src)
    return model


def _default_outputs(model: Model, signature: str | None) -> list[str]:
    meta = model.meta_graph
    if meta is not None and meta.signature_def:
        key = pick_signature(meta, signature, model.path)
        return sorted({parse_ref(t.name).node for t in meta.signature_def[key].outputs.values()})
    assert model.graph is not None
    return default_outputs(model.graph.graph_def, meta, model.path)


def freeze(
    src: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    outputs: list[str] | None = None,
    graph: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    signature: str | None = None,
    tags: list[str] | None = None,
    keep_variables: list[str] | None = None,
    skip_variables: list[str] | None = None,
    keep_devices: bool = False,
    text: bool | None = None,
    inline: bool = True,
    verify: bool | Check = False,
    progress: Progress | None = None,
) -> FreezeReport:
    """Freeze ``src`` into ``out`` (see the module docstring). Returns what was done.

    Where the model comes from: ``src``, or ``graph`` with ``checkpoint``; ``signature`` and ``tags`` pick a
    SavedModel's. How to freeze: ``outputs``, ``keep_variables``/``skip_variables``, ``keep_devices``,
    ``inline``, ``text``. ``verify``: run the original and the frozen graph on the same inputs before writing
    (True, or a :class:`~graphkit.runtime.difference.Check` with inputs, batch and tolerance).
    ``progress(done, total)`` is called as the output's bytes are written."""
    check = as_check(verify)
    with about(graph or src):  # every error names the model
        model = resolve_source(src, graph, checkpoint, tags)
        assert model.graph is not None
        full = model.graph.graph_def
        ends = tf2.endpoints(model, signature, _names(outputs)) if is_tf2(model.meta_graph) else None
        wanted = _wanted(model, full, ends, outputs, signature)
        pruned, dropped = _drop_control_updates(extract_subgraph(full, wanted), wanted)
        frozen_graph, report = _convert(model, pruned, wanted, _names(keep_variables), _names(skip_variables), ends)
        report.dropped_updates = dropped + report.dropped_updates
        if ends is not None:
            frozen_graph = _finish_tf2(frozen_graph, ends, inline, report)
        _clean_up_in_place(frozen_graph, keep_devices, report)
        _check_result(frozen_graph, model, out, report)
        report.output_path = os.fspath(out)
        report.nodes_before = len(full.node)
        report.nodes_after = len(frozen_graph.graph_def.node)
        check_output(out, model.files)
        if check is not None:  # before writing: a graph that fails its check is never left at OUT
            _verify(model, frozen_graph, report, check)
        report.bytes_written = save_graph(frozen_graph, out, inputs=model.files, text=text,
                                          progress=progress)
        return report


def _wanted(model: Model, full: graph_pb2.GraphDef, ends: tf2.Endpoints | None, outputs: list[str] | None,
            signature: str | None) -> list[str]:
    """The nodes to freeze for: a TF2 signature's ends (refused if its variables cannot be frozen), the
    named outputs, or the default ones (never a training op)."""
    if ends is not None:
        problems = tf2.resource_problems(ends, model.path)
        if problems:
            raise GraphkitError("cannot freeze: " + "; ".join(problems), model.path)
        return ends.nodes
    wanted = [parse_ref(n).node for n in _names(outputs)] or _default_outputs(model, signature)
    _refuse_training_outputs(full, wanted, model.path)
    return wanted


def _finish_tf2(frozen_graph: Graph, ends: tf2.Endpoints, inline: bool, report: FreezeReport) -> Graph:
    """A TF2 signature's graph: calls inlined (unless ``inline`` is off), ends named by the signature's keys,
    the hash-table init op kept; recorded in the report."""
    done = tf2.finish(frozen_graph, ends, inline)
    report.input_names, report.output_names = done.inputs, done.outputs
    report.signature = ends.key
    report.outputs = list(report.output_names.values())
    report.inlined = done.inlined.inlined if done.inlined is not None else []
    report.kept_calls = done.inlined.kept if done.inlined is not None else []
    report.init_op = done.init_op or ""
    return done.graph


def _clean_up_in_place(frozen_graph: Graph, keep_devices: bool, report: FreezeReport) -> None:
    """Devices cleared (as freeze_graph does, unless kept), unused If/Case outputs and functions dropped,
    control flow kept functional (TF's lower_control_flow=False)."""
    if not keep_devices:
        for node in frozen_graph.graph_def.node:
            node.device = ""
    report.pruned_outputs = prune_unused_branch_outputs_in_place(frozen_graph.graph_def)
    drop_unused_library(frozen_graph.graph_def)
    keep_control_flow_functional_in_place(frozen_graph.graph_def)


def _check_result(frozen_graph: Graph, model: Model, out: str | os.PathLike[str], report: FreezeReport) -> None:
    """Under protobuf's 2 GiB, importable by TF (freezing adds no such problem: the input's are named), ops
    TF does not define noted."""
    size = serialized_size(frozen_graph)
    if size > PROTOBUF_LIMIT:
        raise GraphkitError(
            f"the frozen graph would be {size / (1 << 30):.2f} GiB; TensorFlow cannot load a GraphDef over 2 GiB. "
            "Keep the weights in the checkpoint (use prune on the meta graph instead) or freeze fewer variables "
            "with --skip-variables", out)
    index = GraphIndex(frozen_graph.graph_def)
    check_importable(index, model.path, "the frozen graph")
    report.notes += unknown_ops_note(index)


def _verify(model: Model, frozen: Graph, report: FreezeReport, check: Check) -> None:
    """Run the original (variables restored) and the frozen graph on the same inputs; compare outputs."""
    from graphkit import runtime
    from graphkit.io.roles import graph_inputs
    from graphkit.io.save import materialize

    if model.checkpoint is None or model.checkpoint.version != 2:
        raise GraphkitError("--verify needs a V2 checkpoint to restore the original graph", model.path)
    inputs = graph_inputs(frozen.graph_def)
    if report.signature:  # a signature is called with every input, defaults or not
        inputs = [dataclasses.replace(i, has_default=False) for i in inputs]
    feeds = runtime.random_feeds(inputs, check.batch, 0, check.inputs)
    if report.signature:  # a TF2 SavedModel: its signature, called the TF2 way
        by_node = {node: key for key, node in report.input_names.items()}
        original = runtime.run_signature(str(model.path), report.signature,
                                         {by_node[k[:-2]]: v for k, v in feeds.items()}, list(report.output_names))
    else:
        original = runtime.run_with_checkpoint(runtime.meta_graph_bytes(model), str(model.checkpoint.prefix),
                                               feeds, report.outputs, str(model.path))
    result = runtime.run_graph_def(materialize(frozen).SerializeToString(), feeds, report.outputs,
                                   report.output_path, init=[report.init_op] if report.init_op else None)
    report.verified = [difference(o, a, o, b, check.rtol, check.atol)
                       for o, a, b in zip(report.outputs, original, result, strict=True)]
    refuse_differences(report.verified, "the frozen graph differs from the original", report.output_path,
                       check.rtol, check.atol)


def _convert(
    model: Model, pruned: graph_pb2.GraphDef, outputs: list[str], keep: list[str], skip: list[str],
    ends: tf2.Endpoints | None = None,
) -> tuple[Graph, FreezeReport]:
    assert model.graph is not None
    ckpt = model.checkpoint
    by_node: dict[str, tuple[str, str]] = {}  # variable node -> (checkpoint key, slice spec)
    for var in graph_variables(model.graph.graph_def, model.meta_graph):
        for node_name in var.nodes:
            by_node[node_name] = (var.key, var.slices.get(node_name, ""))
    report = FreezeReport("", outputs, 0, 0)
    problems: list[str] = []
    values: dict[str, tuple[node_def_pb2.NodeDef, np.ndarray | FileSlice, int, tuple[int, ...]]] = {}
    for node in pruned.node:
        if node.op not in VARIABLE_OPS:
            continue
        key, spec = by_node.get(node.name, (node.name, ""))
        if (keep and not _selected(key, [node.name], keep)) or (skip and _selected(key, [node.name], skip)):
            report.kept_variables.append(key)
            continue
        problem = _check_variable(node, key, spec, ckpt)
        if problem:
            problems.append(problem)
            continue
        assert ckpt is not None
        info = ckpt.info(key)
        if spec:
            part = _slice(ckpt.read(key), spec)
            value: np.ndarray | FileSlice = part
            shape = tuple(part.shape)
        else:
            on_disk = ckpt.file_slice(key)
            value = on_disk if on_disk is not None else ckpt.read(key)
            shape = info.shape
        values[node.name] = (node, value, info.dtype, shape)
        if key not in report.frozen:
            report.frozen.append(key)
    problems += _rewrite_value_updates(pruned, set(values))
    if ends is not None:
        problems += tf2.key_problems(model, ends, {n: k for n, (k, _) in by_node.items()})
    missing = ckpt.missing_files() if ckpt is not None else []
    problems += [f"data file {f.name} is missing" for f in missing]
    if problems:
        where = f" ({ckpt.prefix})" if ckpt is not None else ""
        raise GraphkitError(f"cannot freeze{where}: " + "; ".join(problems))
    graph = Graph(pruned)
    handles = {name for name, (node, *_) in values.items() if node.op == "VarHandleOp"}
    for node, value, code, shape in values.values():
        report.weight_bytes += _to_const(graph, node, value, code, shape)
    result = freeze_resources_in_place(graph.graph_def, {n: (dtypes.base(v[2]), v[3]) for n, v in values.items()},
                                       handles)
    report.dropped_updates += result.dropped
    report.specialized = [f"{a} -> {b}" for a, b in result.specialized]
    return graph, report


def _check_variable(node: node_def_pb2.NodeDef, key: str, spec: str, ckpt: Checkpoint | None) -> str | None:
    if ckpt is None:
        return f"variable '{node.name}' has no checkpoint to read from"
    if key not in ckpt:
        hint = closest(key, (t.name for t in ckpt.tensors()), n=1)
        return f"variable '{key}' is not in the checkpoint{hint}"
    info = ckpt.info(key)
    want_dtype = int(node.attr["dtype"].type) if "dtype" in node.attr else 0
    if want_dtype and dtypes.base(want_dtype) != dtypes.base(info.dtype):
        return (f"variable '{key}' is {dtypes.name(want_dtype)} in the graph but {dtypes.name(info.dtype)} "
                "in the checkpoint")
    if "shape" in node.attr and not spec and not node.attr["shape"].shape.unknown_rank:
        graph_shape = tuple(d.size for d in node.attr["shape"].shape.dim)
        if graph_shape != tuple(info.shape) and all(d >= 0 for d in graph_shape):
            return (f"variable '{key}' has shape {list(graph_shape)} in the graph but {list(info.shape)} "
                    "in the checkpoint")
    return None


def _slice(full: np.ndarray, spec: str) -> np.ndarray:
    """One partition of a full tensor, from a SaveSliceInfo spec like ``"10 3 4,3:0,3"``."""
    extents = spec.split()[-1].split(":")
    index = []
    for extent, dim in zip(extents, full.shape, strict=True):
        if extent == "-":
            index.append(slice(0, dim))
        else:
            start, length = (int(x) for x in extent.split(","))
            index.append(slice(start, start + length))
    return np.ascontiguousarray(full[tuple(index)])


def _to_const(graph: Graph, node: node_def_pb2.NodeDef, value: np.ndarray | FileSlice, code: int,
              shape: tuple[int, ...]) -> int:
    """Turn a variable node into a Const in place (TF's _VarHandle: Clear(), op Const, dtype, value)."""
    name = node.name
    node.Clear()
    node.name = name
    node.op = "Const"
    node.attr["dtype"].type = dtypes.base(code)  # type: ignore[assignment]
    if isinstance(value, FileSlice):
        tensor = node.attr["value"].tensor
        tensor.dtype = dtypes.base(code)  # type: ignore[assignment]
        tensor.tensor_shape.CopyFrom(shape_proto(shape))
        graph.external[name] = value
        return len(value)
    array = np.asarray(value)
    if dtypes.base(code) == dtypes.DT_STRING:
        node.attr["value"].tensor.CopyFrom(from_numpy(np.asarray(array.reshape(-1).tolist(), dtype=object)
                                                      .reshape(array.shape)))
        node.attr["value"].tensor.dtype = dtypes.DT_STRING  # type: ignore[assignment]
    else:
        node.attr["value"].tensor.CopyFrom(from_numpy(array))
    return int(array.nbytes)


def _refuse_training_outputs(gd: graph_pb2.GraphDef, outputs: list[str], path: object) -> None:
    """A train op (an update op, or a NoOp grouping updates) named as an output cannot be frozen."""
    index = GraphIndex(gd)
    for name in outputs:
        node = index.nodes.get(name)
        if node is not None and (_UPDATE_OPS.match(node.op) or (node.op == "NoOp" and node.input)):
            raise GraphkitError(f"output '{name}' ({node.op}) is a training op; a frozen graph has no state to "
                                "update -- name the inference outputs with --outputs", str(path))


def _drop_control_updates(gd: graph_pb2.GraphDef, outputs: list[str]) -> tuple[graph_pb2.GraphDef, list[str]]:
    """Remove update ops that the outputs reach only through control inputs, then prune again."""
    dropped: list[str] = []
    while True:
        index = GraphIndex(gd)
        updates = {n.name for n in gd.node
                   if _UPDATE_OPS.match(n.op) and n.name not in outputs and not index.consumers.get(n.name)}
        if not updates:
            return gd, dropped
        for node in gd.node:
            kept = [i for i in node.input if not (i.startswith("^") and i[1:] in updates)]
            if len(kept) != len(node.input):
                del node.input[:]
                node.input.extend(kept)
        dropped += sorted(updates)
        gd = extract_subgraph(gd, outputs)


_VALUE_OF_UPDATE = {"Assign": "Identity", "AssignAdd": "Add", "AssignSub": "Sub"}


def _rewrite_value_updates(gd: graph_pb2.GraphDef, variables: set[str]) -> list[str]:
    """Update ops whose value is used: Assign/AssignAdd/AssignSub on a frozen variable become
    Identity(value)/Add/Sub (the community fix for tensorflow#3628, applied only where exact); anything else
    is reported."""
    problems = []
    index = GraphIndex(gd)
    for node in gd.node:
        if not _UPDATE_OPS.match(node.op):
            continue
        target = _source_variable(index, node.input[0]) if node.input else None
        if node.op in _VALUE_OF_UPDATE and target in variables:
            node.op = _VALUE_OF_UPDATE[node.op]
            if node.op == "Identity":
                del node.input[0]
            for attr in ("use_locking", "validate_shape", "_output_shapes"):
                node.attr.pop(attr, None)
            continue
        users = [u for u, _ in index.consumers.get(node.name, [])]
        via = f" (its value is used by '{users[0]}')" if users else ""
        problems.append(f"update op '{node.name}' ({node.op}) is on the path to the outputs{via}; "
                        "choose outputs that do not depend on training updates")
    return problems


def _source_variable(index: GraphIndex, ref: str) -> str | None:
    """The variable a ref input comes from, through Ref/Identity/Switch pass-throughs."""
    name = parse_ref(ref).node
    while name in index.nodes and index.nodes[name].op in HANDLE_FORWARDING and index.nodes[name].input:
        name = parse_ref(index.nodes[name].input[0]).node
    node = index.nodes.get(name)
    return name if node is not None and node.op in VARIABLE_OPS else None
