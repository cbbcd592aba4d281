"""Freezing a TF2 object-graph SavedModel's signature (Keras ``model.export``, ``tf.saved_model.save``).

The SavedModel's main graph is frozen like a TF1 graph (the handles become constants, the signature's
function chain is specialized, io/savedmodel.py maps handles to keys), then the calls are inlined into a
flat graph and the ends are named for people: Placeholders by the signature's input keys (``x``, not
``serving_default_x``), outputs by its output keys (``output_0``, not ``StatefulPartitionedCall:0`` or
TF's ``Identity``), so users and tools can address them.

Hash tables (``tf.lookup.StaticHashTable``) are kept with what the SavedModel's init op runs to fill them,
behind one NoOp, ``init_all_tables``: run it once before inference, as TF1 programs did. A table nothing
fills is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from graphkit.errors import GraphkitError
from graphkit.io import Graph, Model, dtypes
from graphkit.io.functions import OpDefs
from graphkit.io.graph import GraphIndex, TensorRef, parse_ref, unique_name
from graphkit.io.inline import InlineReport, inline_calls_in_place
from graphkit.io.passes import extract_subgraph, reachable, rewire
from graphkit.io.roles import VARIABLE_OPS, pick_signature
from graphkit.io.savedmodel import SignatureCall, object_graph_keys, signature_call
from graphkit.proto import node_def_pb2

INIT_OP = "init_all_tables"  # the TF1 convention: run it once before inference


@dataclass
class Endpoints:
    """A TF2 signature's ends: its call node, inputs (key -> Placeholder) and outputs (key -> tensor)."""

    key: str
    call: SignatureCall
    inputs: dict[str, str]
    outputs: dict[str, TensorRef]
    output_dtypes: dict[str, int] = field(default_factory=dict)
    tables: dict[str, list[str]] = field(default_factory=dict)  # table node -> the nodes that initialize it

    @property
    def nodes(self) -> list[str]:
        """What the frozen graph is cut to: the signature's call and the tables' initializers."""
        return [self.call.node, *dict.fromkeys(n for inits in self.tables.values() for n in inits)]


def endpoints(model: Model, signature: str | None, wanted: list[str]) -> Endpoints:
    """The signature to freeze and, with ``wanted``, only those of its output keys."""
    meta = model.meta_graph
    assert meta is not None and model.graph is not None
    key = pick_signature(meta, signature, model.path)
    sig = meta.signature_def[key]
    unknown = [w for w in wanted if w not in sig.outputs]
    if unknown:
        raise GraphkitError(f"signature '{key}' has no output {', '.join(unknown)} (it has: "
                            f"{', '.join(sorted(sig.outputs))}); --outputs takes its output keys", model.path)
    keys = wanted or sorted(sig.outputs)
    call = signature_call(model.graph.graph_def, meta, key, model.path)
    return Endpoints(key, call, {k: parse_ref(v.name).node for k, v in sorted(sig.inputs.items())},
                     {k: parse_ref(sig.outputs[k].name) for k in keys},
                     {k: int(sig.outputs[k].dtype) for k in keys}, _tables(model, call))


def _tables(model: Model, call: SignatureCall) -> dict[str, list[str]]:
    """Non-variable resources the call captures (hash tables) and, for each, the nodes that the
    SavedModel's init op (``__saved_model_init_op``, run once at load) runs to fill it."""
    meta = model.meta_graph
    assert meta is not None and model.graph is not None
    gd = model.graph.graph_def
    index = GraphIndex(gd)
    op_defs = OpDefs(gd)
    init_ops = [parse_ref(t.name).node for k in ("__saved_model_init_op", "__saved_model_train_op")
                if k in meta.signature_def for t in meta.signature_def[k].outputs.values()]
    init_ops += [parse_ref(n).node for k in ("saved_model_main_op", "legacy_init_op", "table_initializer")
                 if k in meta.collection_def for n in meta.collection_def[k].node_list.value]
    run_at_load = reachable(index, [n for n in init_ops if n in index.nodes]) if init_ops else set()
    tables: dict[str, list[str]] = {}
    for handle in call.captured:
        node = index.nodes.get(handle)
        if node is None or node.op in VARIABLE_OPS or not _makes_resource(node, op_defs):
            continue
        tables[handle] = [user for user, _ in index.consumers.get(handle, []) if user in run_at_load]
    return tables


def _makes_resource(node: node_def_pb2.NodeDef, op_defs: OpDefs) -> bool:
    op_def = op_defs.get(node.op)
    return op_def is not None and not op_def.input_arg and any(a.type == dtypes.DT_RESOURCE for a in op_def.output_arg)


def key_problems(model: Model, ends: Endpoints, keys_by_node: dict[str, str]) -> list[str]:
    """Cross-check the restore function's keys with the object graph's for the handles the signature
    captures: a different key must hold the same value (Keras 3 writes each weight twice)."""
    ckpt, meta = model.checkpoint, model.meta_graph
    tracked = ckpt.object_graph() if ckpt is not None else None
    if ckpt is None or meta is None or tracked is None:
        return []
    graph_keys = object_graph_keys(meta, tracked)
    problems = []
    for handle, obj in ends.call.captured.items():
        restored, bound = keys_by_node.get(handle), graph_keys.get(obj) if obj is not None else None
        if restored is None or bound is None or restored == bound or bound not in ckpt or restored not in ckpt:
            continue
        if not ckpt.same_value(restored, bound):
            problems.append(f"variable '{handle}' is restored from '{restored}' but the object graph binds "
                            f"'{bound}' to signature '{ends.key}', and their values differ")
    return problems


@dataclass
class Finished:
    graph: Graph
    inputs: dict[str, str]  # input key -> Placeholder
    outputs: dict[str, str]  # output key -> node
    inlined: InlineReport | None
    init_op: str | None  # the NoOp that fills the hash tables


def finish(graph: Graph, ends: Endpoints, inline: bool) -> Finished:
    """Inline the calls (unless ``inline`` is false), name inputs and outputs by the signature's keys, add
    ``init_all_tables`` when tables are kept, and prune to those."""
    gd = graph.graph_def
    inits = [n for n in ends.nodes if n != ends.call.node]
    init_op = unique_name(INIT_OP, set(GraphIndex(gd).nodes)) if inits else None
    if init_op:
        gd.node.add(name=init_op, op="NoOp", input=[f"^{n}" for n in inits])
    report = inline_calls_in_place(gd) if inline else None
    moved = report.moved if report is not None else {}
    index = GraphIndex(gd)
    taken = set(index.nodes)
    inputs: dict[str, str] = {}
    for key, name in ends.inputs.items():
        if name not in index.nodes:
            continue  # an input the kept outputs do not need
        target = key if key == name or key not in taken else unique_name(key, taken)
        if target != name:
            taken.add(target)
            index.rename_node(name, target)
            rewire(index, {TensorRef(name): TensorRef(target), TensorRef(name, control=True):
                           TensorRef(target, control=True)})
        inputs[key] = target
    outputs: dict[str, str] = {}
    added = []
    for key, ref in ends.outputs.items():
        source = moved.get(ref, ref)
        name = key if key not in taken else unique_name(key, taken)
        taken.add(name)
        node = node_def_pb2.NodeDef(name=name, op="Identity", input=[str(source)])
        node.attr["T"].type = ends.output_dtypes[key] or dtypes.DT_FLOAT  # type: ignore[assignment]
        added.append(node)
        outputs[key] = name
    index.add(added)
    pruned = extract_subgraph(gd, [*outputs.values(), *([init_op] if init_op else [])], index=index)
    kept = {n.name for n in pruned.node}
    return Finished(Graph(pruned, {k: v for k, v in graph.external.items() if k in kept}), inputs, outputs, report,
                    init_op)


def resource_problems(ends: Endpoints, path: str | os.PathLike[str] | None) -> list[str]:
    """A non-variable resource (hash table...) that nothing the SavedModel runs at load fills: the frozen
    graph could not initialize it."""
    bare = [t for t, inits in ends.tables.items() if not inits]
    return [f"signature '{ends.key}' uses {', '.join(bare)}, a resource that is not a variable and that the "
            "SavedModel's init op does not fill; graphkit cannot freeze it -- choose --outputs that do not "
            "use it"] if bare else []
