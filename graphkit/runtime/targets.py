"""Which of a graph's ops a deployment target cannot run: TF kernels registered in the installed TF, TFLite
builtins (what needs Flex / custom ops), ONNX through tf2onnx's handler table. The Android "No OpKernel was
registered" failure, caught before deploying."""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from typing import Literal

from graphkit.errors import GraphkitError
from graphkit.io import Graph, save_graph
from graphkit.io.functions import nodes_with_function
from graphkit.io.ops import TF1_CONTROL_FLOW
from graphkit.io.roles import graph_inputs
from graphkit.proto import graph_pb2

Target = Literal["tf", "tflite", "onnx"]
TARGETS: tuple[Target, ...] = ("tf", "tflite", "onnx")
_STRUCTURAL = frozenset({"Placeholder", "PlaceholderWithDefault", "Const", "NoOp", "Identity"})


def unsupported_ops(graph: Graph | graph_pb2.GraphDef, target: Target, *, outputs: list[str] | None = None,
                    opset: int | None = None) -> dict[str, dict]:
    """op type -> {"nodes": [...], "note": why} for every op ``target`` cannot run. ``graph`` is a loaded
    Graph (weights kept in the file are used where the target needs them: tflite) or a GraphDef."""
    if not isinstance(graph, Graph):
        graph = Graph(graph)
    gd = graph.graph_def
    by_op: dict[str, list[str]] = defaultdict(list)
    for function, node in nodes_with_function(gd):  # inside If/While bodies too, named function/node
        by_op[node.op].append(node.name if function is None else f"{function}/{node.name}")
    if target == "tf":
        missing = _tf_missing(set(by_op) - TF1_CONTROL_FLOW)
    elif target == "onnx":
        missing = _onnx_missing(set(by_op) - _STRUCTURAL - TF1_CONTROL_FLOW, opset)
    elif target == "tflite":
        missing = _tflite_missing(graph, outputs)
    else:
        raise GraphkitError(f"unknown target '{target}' (one of: {', '.join(TARGETS)})")
    return {op: {"nodes": by_op.get(op, []), "note": note} for op, note in sorted(missing.items())}


def _tf_missing(ops: set[str]) -> dict[str, str]:
    from graphkit.runtime import import_tf

    import_tf()
    from tensorflow.python.framework import kernels, op_def_registry

    out = {}
    for op in ops:
        if op_def_registry.get(op) is None:
            out[op] = "not an op of this TensorFlow (a custom op: load its library first)"
        elif op not in _STRUCTURAL and not any(k.device_type == "CPU"
                                               for k in kernels.get_registered_kernels_for_op(op).kernel):
            out[op] = "no CPU kernel registered in this TensorFlow"
    return out


def _onnx_missing(ops: set[str], opset: int | None) -> dict[str, str]:
    from graphkit.runtime import import_tf

    import_tf()  # first, with TF's start-up notes kept off stderr
    try:
        import tf2onnx.convert  # noqa: F401  (registers the handlers)
        from tf2onnx import constants
        from tf2onnx.handler import tf_op
    except ImportError as exc:
        raise GraphkitError("the onnx target needs tf2onnx: pip install 'graphkit[onnx]'") from exc
    version = opset or constants.PREFERRED_OPSET
    handled: set[str] = set()
    for introduced in tf_op.get_opsets()[""][: version + 1]:
        handled.update(introduced)
    return {op: f"tf2onnx has no handler for it at opset {version}" for op in ops if op not in handled}


def _tflite_missing(graph: Graph, outputs: list[str] | None) -> dict[str, str]:
    """Convert with TFLite builtins only and read which ops the converter says need TF Select or custom ops."""
    from graphkit.io.roles import likely_outputs
    from graphkit.runtime import export

    names = outputs or [o.name for o in likely_outputs(graph.graph_def)]
    placeholders = graph_inputs(graph.graph_def)
    shapes = {p.name: [1 if d < 0 else d for d in (p.shape or ())] for p in placeholders if not p.has_default}
    with tempfile.TemporaryDirectory(prefix="graphkit-") as tmp:
        path = os.path.join(tmp, "graph.pb")
        save_graph(graph, path)  # the weights streamed in, whether in the proto or left in the model's file
        try:
            export.to_tflite(path, list(shapes), shapes, names)
            return {}
        except export.TFLiteRefused as refused:
            message = refused.details
    out: dict[str, str] = {}
    lines = message.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("TF Select ops:"):
            for op in line.split(":", 1)[1].split(","):
                out[op.strip()] = "not a TFLite builtin: needs the Flex delegate (TF Select)"
        if line.startswith("Ops that need custom implementation"):
            for follow in lines[i + 1:]:
                follow = follow.strip()
                if not follow.startswith("tf."):
                    break
                out[follow[3:].split("(", 1)[0]] = "needs a custom TFLite op"
    if not out:
        raise GraphkitError(f"the TFLite converter failed for another reason: {message.strip().splitlines()[0]}")
    return out
