"""What ``graphkit inspect`` reports, as plain JSON-ready data (rendering is in render.py)."""

from __future__ import annotations

import fnmatch
from collections import Counter
from typing import Any

import numpy as np

from graphkit.errors import GraphkitError, about
from graphkit.io import Model, dtypes
from graphkit.io.checkpoint import OBJECT_GRAPH_KEY, Checkpoint
from graphkit.io.functions import FunctionLibrary, nodes_with_function
from graphkit.io.graph import Graph, closest, parse_ref
from graphkit.io.roles import Variable, graph_inputs, graph_variables, likely_outputs
from graphkit.io.savedmodel import is_tf2
from graphkit.io.tensors import shape_of, splat_scalar
from graphkit.proto import meta_graph_pb2

Json = dict[str, Any]


def _shape(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else [int(d) for d in shape]


def _nbytes(dtype: int, shape: tuple[int, ...] | None) -> int | None:
    if shape is None or any(d < 0 for d in shape) or dtypes.base(dtype) in dtypes.NO_FIXED_SIZE:
        return None
    try:
        return int(np.prod(shape, dtype=np.int64)) * dtypes.to_numpy(dtype).itemsize
    except GraphkitError:
        return None


def checkpoint_tensors(ckpt: Checkpoint) -> list[Json]:
    """The checkpoint's tensors as TF's inspect_checkpoint lists them (partitioned ones whole)."""
    return [
        {"name": t.name, "dtype": dtypes.name(t.dtype), "shape": list(t.shape), "bytes": t.nbytes,
         **({"partitioned": True} if t.partitioned else {})}
        for t in ckpt.tensors() if t.name != OBJECT_GRAPH_KEY
    ]


def _variables(graph_vars: list[Variable], ckpt: Checkpoint | None) -> tuple[list[Json], Json]:
    out: list[Json] = []
    missing_in_ckpt: list[str] = []
    different: list[Json] = []
    keys = set()
    for var in graph_vars:
        keys.add(var.key)
        entry: Json = {"name": var.key, "dtype": dtypes.name(dtypes.base(var.dtype)), "shape": _shape(var.shape),
                       "bytes": _nbytes(var.dtype, var.shape), "in_graph": True}
        if var.label:
            entry["label"] = var.label
        if len(var.nodes) > 1:
            entry["partitions"] = len(var.nodes)
        if ckpt is not None:
            entry["in_checkpoint"] = var.key in ckpt
            if var.key in ckpt:
                info = ckpt.info(var.key)
                entry["bytes"] = info.nbytes
                same_dtype = not var.dtype or dtypes.base(var.dtype) == dtypes.base(info.dtype)
                same_shape = var.shape is None or tuple(var.shape) == tuple(info.shape)
                if not (same_dtype and same_shape):
                    different.append({
                        "name": var.key,
                        "graph": {"dtype": entry["dtype"], "shape": entry["shape"]},
                        "checkpoint": {"dtype": dtypes.name(info.dtype), "shape": list(info.shape)},
                    })
            else:
                missing_in_ckpt.append(var.key)
        out.append(entry)
    missing_in_graph: list[str] = []
    if ckpt is not None:
        for t in ckpt.tensors():
            if t.name not in keys and t.name != OBJECT_GRAPH_KEY:
                missing_in_graph.append(t.name)
                out.append({"name": t.name, "dtype": dtypes.name(t.dtype), "shape": list(t.shape),
                            "bytes": t.nbytes, "in_graph": False, "in_checkpoint": True})
    mismatch = {"missing_in_checkpoint": missing_in_ckpt, "missing_in_graph": missing_in_graph,
                "different": different}
    return out, mismatch


def _signatures(meta: meta_graph_pb2.MetaGraphDef) -> list[Json]:
    def tensors(items: Any) -> list[Json]:
        return [{"key": k, "name": v.name, "dtype": dtypes.name(v.dtype),
                 "shape": None if v.tensor_shape.unknown_rank else _shape(shape_of(v.tensor_shape))}
                for k, v in sorted(items)]

    return [{"key": key, "method": sig.method_name, "inputs": tensors(sig.inputs.items()),
             "outputs": tensors(sig.outputs.items())}
            for key, sig in sorted(meta.signature_def.items()) if not key.startswith("__")]


def const_bytes(graph: Graph) -> int:
    return sum(graph.const_nbytes(n) for n in graph.graph_def.node if n.op == "Const")


def summarize(model: Model) -> Json:
    """The inspect summary (README: "inspect --json schema")."""
    with about(model.path):  # what the lazily read parts find wrong names the model
        return _summarize(model)


def _summarize(model: Model) -> Json:
    ckpt = model.checkpoint
    out: Json = {
        "path": str(model.path),
        "format": model.format,
        "text": model.text,
        "file_bytes": model.file_bytes,
    }
    meta = model.meta_graph
    if meta is not None and meta.meta_info_def.tensorflow_version:
        out["tensorflow_version"] = meta.meta_info_def.tensorflow_version
    if model.tags:
        out["tags"] = model.tags
    if ckpt is not None:
        out["checkpoint"] = {"prefix": str(ckpt.prefix), "version": ckpt.version,
                             "tensor_count": len(checkpoint_tensors(ckpt)), "bytes": ckpt.total_bytes,
                             "files": [str(f) for f in ckpt.files]}
    graph = model.graph
    if graph is None:
        assert ckpt is not None
        tensors = checkpoint_tensors(ckpt)
        out.update(node_count=0, ops={}, inputs=[], outputs=[], variables=tensors,
                   weight_bytes=ckpt.total_bytes)
        return out
    gd = graph.graph_def
    out["producer"] = gd.versions.producer if gd.HasField("versions") else None
    out["node_count"] = len(gd.node)
    out["ops"] = op_counts(model)
    inputs = graph_inputs(gd, meta)
    if is_tf2(meta):  # a TF2 SavedModel's inputs are its signatures' (not asset or saver plumbing)
        assert meta is not None
        fed = {parse_ref(t.name).node for key, sig in meta.signature_def.items() if not key.startswith("__")
               for t in sig.inputs.values()}
        inputs = [i for i in inputs if i.name in fed]
    out["inputs"] = [{"name": i.name, "op": i.op, "dtype": i.dtype, "shape": _shape(i.shape),
                      **({"optional": True} if i.has_default else {})} for i in inputs]
    out["outputs"] = [{"name": o.name, "op": o.op, "reason": o.reason} for o in likely_outputs(gd, meta)]
    variables, mismatch = _variables(graph_variables(gd, meta), ckpt)
    out["variables"] = variables
    if ckpt is not None:
        out["variable_mismatches"] = mismatch
    out["functions"] = len(gd.library.function)
    if meta is not None:
        out["signatures"] = _signatures(meta)
    consts = const_bytes(graph)
    out["const_bytes"] = consts  # stored bytes
    splats = [n for n in gd.node if n.op == "Const" and graph.is_splat(n)]
    if splats:  # one value filling a shape: a few bytes in the file, expanded by TF at load time
        out["splat_constants"] = [{"name": n.name, "dtype": dtypes.name(n.attr["value"].tensor.dtype),
                                   "shape": _shape(shape_of(n.attr["value"].tensor.tensor_shape)),
                                   "expanded_bytes": graph.logical_nbytes(n)} for n in splats]
    # weights live in the checkpoint when there is one (graph Consts are then shapes and initializers)
    out["weight_bytes"] = ckpt.total_bytes if ckpt is not None else consts
    return out


def list_nodes(model: Model, match: str | None = None, op: str | None = None) -> list[Json]:
    """Nodes (name, op, inputs), optionally filtered by a name glob and an op type: the main graph's, then
    those inside library functions (marked with ``function``; their inputs in the function-body form)."""
    graph = model.require_graph("list its tensors instead (--tensors)")
    return [
        {"name": n.name, "op": n.op, "inputs": list(n.input), **({"function": f} if f is not None else {}),
         **({"device": n.device} if n.device else {})}
        for f, n in nodes_with_function(graph.graph_def)
        if (match is None or fnmatch.fnmatchcase(n.name, match)) and (op is None or n.op == op)
    ]


def op_counts(model: Model) -> dict[str, int]:
    """Op type -> node count, over the main graph and every library function."""
    graph = model.require_graph("list its tensors instead (--tensors)")
    return dict(Counter(n.op for _, n in nodes_with_function(graph.graph_def)).most_common())


def function_tree(model: Model) -> list[Json]:
    """The call tree from the main graph: ``{depth, caller, function, nodes, implements}`` rows, depth first,
    and then the library functions nothing calls (``depth`` -1)."""
    gd = model.require_graph("list its tensors instead (--tensors)").graph_def
    library = FunctionLibrary(gd)
    rows: list[Json] = []
    for depth, caller, name in library.call_tree(gd.node):
        fdef = library.functions.get(name)
        row: Json = {"depth": depth, "caller": caller, "function": name,
                     "nodes": len(fdef.node_def) if fdef is not None else None}
        marks = [fdef.attr[k].s.decode(errors="replace") for k in ("_implements", "api_implements")
                 if fdef is not None and k in fdef.attr]
        if marks:
            row["implements"] = marks[0]
        rows.append(row)
    called = set(library.reachable(gd.node))
    rows += [{"depth": -1, "caller": None, "function": name, "nodes": len(library.functions[name].node_def)}
             for name in library if name not in called]
    return rows


def tensor_value(model: Model, name: str) -> np.ndarray:
    """A checkpoint tensor, or the value of a Const node of the graph."""
    with about(model.path):
        if model.checkpoint is not None and name in model.checkpoint:
            return model.checkpoint.read(name)
        if model.graph is not None:
            for node in model.graph.graph_def.node:
                if node.name == parse_ref(name).node and node.op == "Const":
                    if node.name not in model.graph.external:
                        tensor = node.attr["value"].tensor
                        scalar = splat_scalar(tensor)
                        if scalar is not None:  # one value for a large shape: a view, never expanded
                            return np.broadcast_to(scalar, shape_of(tensor.tensor_shape) or ())
                    return model.graph.const(node)
    where = "checkpoint tensor or Const node" if model.checkpoint is not None else "Const node"
    close = closest(name, (t.name for t in model.checkpoint.tensors())) if model.checkpoint is not None else ""
    raise GraphkitError(f"no {where} named '{name}'{close}", model.path)
