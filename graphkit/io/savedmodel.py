"""TF2 object-graph SavedModels: which main-graph handle holds which checkpoint key, and what a signature
calls.

``tf.saved_model.save`` (and Keras ``model.export``) still writes a TF1-compatible main graph: one
``VarHandleOp`` per variable, ``<signature>_<key>`` Placeholders, one ``StatefulPartitionedCall`` per
signature whose trailing inputs are the captured handles, and a restore call
(``saver_def.restore_op_name``) into ``__inference__traced_restore_N``, whose body is
``RestoreV2(tensor_names) -> Identity -> AssignVariableOp(arg_j, ...)``. Caller input *j* is the handle, so
the restore function says exactly which key each handle is restored from. ``SavedVariable.name`` does not:
``tf.Module`` leaves every variable named "Variable", and Keras 3 writes each weight twice (``variables/N``
and ``_all_variables/M``), only one copy feeding the signature.

The object graph gives a second, independent answer for the handles a signature captures:
``concrete_functions[F].bound_inputs`` are object-graph node ids, one per trailing input of the call node,
and the checkpoint's own ``_CHECKPOINTABLE_OBJECT_GRAPH`` (walked in parallel by child names, as
``load.py:_restore_checkpoint`` does) names each node's ``VARIABLE_VALUE`` key. Sources:
``saved_object_graph.proto``, ``python/saved_model/load.py:395-403,548-599``,
``signature_serialization.py:289-340``.
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass

from graphkit.errors import GraphkitError
from graphkit.io.functions import FunctionLibrary, FunctionRef, arg_names, parse_function_ref
from graphkit.io.graph import GraphIndex, parse_ref
from graphkit.io.ops import CALL_OPS
from graphkit.proto import graph_pb2, meta_graph_pb2, trackable_object_graph_pb2

_AUTO_NAME = re.compile(r"^Variable(_\d+)?(:\d+)?$")


def is_tf2(meta_graph: meta_graph_pb2.MetaGraphDef | None) -> bool:
    """A SavedModel written by TF2's object-based saver (it has an object graph)."""
    return meta_graph is not None and len(meta_graph.object_graph_def.nodes) > 1


def restore_keys(graph_def: graph_pb2.GraphDef, meta_graph: meta_graph_pb2.MetaGraphDef,
                 path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Main-graph handle node -> the checkpoint key the SavedModel's restore function assigns it from."""
    restore = meta_graph.saver_def.restore_op_name
    index = GraphIndex(graph_def)
    node = index.nodes.get(parse_ref(restore).node) if restore else None
    if node is None or node.op not in CALL_OPS:
        raise GraphkitError("this TF2 SavedModel has no restore function (saver_def.restore_op_name names "
                            f"'{restore or 'nothing'}'), so its variables cannot be matched to checkpoint keys", path)
    library = FunctionLibrary(graph_def)
    fdef = library.function(node.attr["f"].func.name)
    body = GraphIndex(fdef)
    restores = [n for n in fdef.node_def if n.op == "RestoreV2"]
    if len(restores) != 1:
        raise GraphkitError(f"the restore function '{fdef.signature.name}' has {len(restores)} RestoreV2 ops; "
                            "graphkit reads SavedModels whose variables are restored by one", path)
    names_ref = parse_function_ref(restores[0].input[1]).node
    names_node = body.nodes.get(names_ref)
    if names_node is None or names_node.op != "Const":
        raise GraphkitError(f"the restore function's tensor names ('{names_ref}') are not a constant", path)
    keys = [s.decode("utf-8", "replace") for s in names_node.attr["value"].tensor.string_val]
    args = arg_names(fdef)
    data_inputs = [t for t in node.input if not t.startswith("^")]
    found: dict[str, str] = {}
    for assign in fdef.node_def:
        if assign.op != "AssignVariableOp" or len(assign.input) < 2:
            continue
        handle = parse_function_ref(assign.input[0])
        if handle.out_arg is not None or handle.node not in args:
            continue
        source = _through_identities(body, assign.input[1])
        if source is None or source.node != restores[0].name or source.index >= len(keys):
            continue
        caller_input = data_inputs[args.index(handle.node)]
        found[parse_ref(caller_input).node] = keys[source.index]
    return found


def _through_identities(body: GraphIndex, text: str) -> FunctionRef | None:
    ref = parse_function_ref(text)
    for _ in range(16):
        node = body.nodes.get(ref.node)
        if node is None or node.op != "Identity" or ref.out_arg is None:
            return ref
        ref = parse_function_ref(node.input[0])
    return None


@dataclass(frozen=True)
class SignatureCall:
    """A signature's call node in the main graph, its function, and the handles it captures by
    object-graph node id (None when the object graph does not say)."""

    key: str
    node: str
    function: str
    captured: dict[str, int | None]  # trailing-input handle node -> object-graph node id


def signature_call(graph_def: graph_pb2.GraphDef, meta_graph: meta_graph_pb2.MetaGraphDef, key: str,
                   path: str | os.PathLike[str] | None = None) -> SignatureCall:
    """The call node whose outputs a TF2 signature names, and what it captures."""
    sig = meta_graph.signature_def[key]
    nodes = {parse_ref(t.name).node for t in sig.outputs.values()}
    if len(nodes) != 1:
        raise GraphkitError(f"signature '{key}' reads {len(nodes)} nodes ({', '.join(sorted(nodes))}); a TF2 "
                            "signature calls one function", path)
    name = nodes.pop()
    index = GraphIndex(graph_def)
    node = index.node(name)
    if node.op not in CALL_OPS:
        raise GraphkitError(f"signature '{key}' reads '{name}' ({node.op}), not a function call", path)
    function = node.attr["f"].func.name
    data = [parse_ref(t).node for t in node.input if not t.startswith("^")]
    user_inputs = len(sig.inputs)
    bound = list(meta_graph.object_graph_def.concrete_functions[function].bound_inputs) \
        if function in meta_graph.object_graph_def.concrete_functions else []
    trailing = data[user_inputs:]
    ids: list[int | None] = list(bound) if len(bound) == len(trailing) else [None] * len(trailing)
    return SignatureCall(key, name, function, dict(zip(trailing, ids, strict=True)))


def object_paths(meta_graph: meta_graph_pb2.MetaGraphDef) -> dict[int, str]:
    """Object-graph node id -> its shortest child path from the root (``layer/kernel``)."""
    nodes = meta_graph.object_graph_def.nodes
    paths: dict[int, str] = {0: ""}
    queue = deque([0])
    while queue:
        i = queue.popleft()
        for child in nodes[i].children:
            if child.node_id not in paths and child.node_id < len(nodes):
                paths[child.node_id] = (paths[i] + "/" if paths[i] else "") + child.local_name
                queue.append(child.node_id)
    return paths


def object_graph_keys(meta_graph: meta_graph_pb2.MetaGraphDef,
                      checkpoint_graph: trackable_object_graph_pb2.TrackableObjectGraph) -> dict[int, str]:
    """SavedObjectGraph node id -> its ``VARIABLE_VALUE`` checkpoint key, by walking the SavedModel's object
    graph and the checkpoint's TrackableObjectGraph (``Checkpoint.object_graph()``) in parallel by child
    names."""
    saved = meta_graph.object_graph_def.nodes
    tracked = checkpoint_graph.nodes
    pairs = {0: 0}
    queue = deque([0])
    while queue:
        i = queue.popleft()
        children = {c.local_name: c.node_id for c in tracked[pairs[i]].children}
        for child in saved[i].children:
            j = children.get(child.local_name)
            if j is not None and child.node_id not in pairs and j < len(tracked):
                pairs[child.node_id] = j
                queue.append(child.node_id)
    keys = {}
    for i, j in pairs.items():
        for attr in tracked[j].attributes:
            if attr.name == "VARIABLE_VALUE":
                keys[i] = attr.checkpoint_key
    return keys


def readable_names(meta_graph: meta_graph_pb2.MetaGraphDef) -> dict[int, str]:
    """Object-graph variable id -> a name a person recognizes: ``SavedVariable.name`` (``dense/kernel``)
    unless it is an automatic one (tf.Module's "Variable", "Variable_3"), then the object path."""
    nodes = meta_graph.object_graph_def.nodes
    paths = object_paths(meta_graph)
    named = {i: n.variable.name for i, n in enumerate(nodes) if n.WhichOneof("kind") == "variable"}
    return {i: name if name and not _AUTO_NAME.match(name) else paths.get(i, name) for i, name in named.items()}
