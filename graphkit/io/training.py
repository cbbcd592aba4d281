"""Training-only nodes out of an inference graph: what ``prune --strip-training`` and ``optimize``'s
``strip-training`` pass do (TF's ``graph_util.remove_training_nodes``, without its bugs)."""

from __future__ import annotations

from graphkit.io.graph import GraphIndex, TensorRef, input_node, parse_ref
from graphkit.io.ops import INFERENCE_IDENTITIES, SIDE_EFFECT_ONLY
from graphkit.io.passes import follow_chains, reachable, rewire
from graphkit.proto import graph_pb2

_WRAPPERS = ("Identity", "NoOp")


def strip_training(gd: graph_pb2.GraphDef, protected: list[str]) -> graph_pb2.GraphDef:
    """A copy of the graph with its pass-throughs spliced out (Identity, StopGradient, CheckNumerics,
    Print...) and its Assert/PrintV2 control chains dropped, cut to what ``protected`` needs. Unlike TF's
    remove_training_nodes: consumers written ``id:0`` are rewired too, a
    pass-through of output k keeps reading output k, and library and versions are kept."""
    out = graph_pb2.GraphDef()
    out.CopyFrom(gd)
    index = GraphIndex(out)
    strip_training_in_place(index, protected)
    result = index.restricted(index.inputs).graph_def
    assert result is not None
    return result


def strip_training_in_place(index: GraphIndex, protected: list[str]) -> int:
    """:func:`strip_training` on an index, in place (it then holds the graph, see
    :meth:`GraphIndex.remove`); returns the number of nodes removed."""
    keep = set(protected)
    ops, inputs = index.ops, index.inputs
    dropped_controls = {name for name, op in ops.items() if name not in keep and (
        op in SIDE_EFFECT_ONLY or op == "CheckNumerics"
        or (op in ("If", "StatelessIf") and name.endswith("AssertGuard")))}  # tf.debugging.Assert in TF2
    wrappers = [name for name in index.of_ops(_WRAPPERS) if inputs[name] and name not in keep]
    grew = bool(dropped_controls and wrappers)
    while grew:  # Identity/NoOp wrappers of those (AssertGuard/Identity, tf.group of asserts)
        grew = False
        for name in wrappers:
            if name not in dropped_controls and all(input_node(i) in dropped_controls for i in inputs[name]):
                dropped_controls.add(name)
                grew = True
    mapping: dict[TensorRef, TensorRef] = {}
    control_consumers = index.control_consumers
    for name, op in ops.items():
        if name in keep or op not in INFERENCE_IDENTITIES or not inputs[name]:
            continue
        texts = inputs[name]
        controls = [i for i in texts if i.startswith("^") and i[1:] not in dropped_controls]
        if not controls and not control_consumers.get(name):
            mapping[TensorRef(name)] = parse_ref(texts[0])
    # a node that stays and is colocated with a pass-through keeps it (TF does the same)
    going = dropped_controls | {k.node for k in mapping}
    for name, targets in index.colocated.items():
        if name not in going:
            for target in targets:
                mapping.pop(TensorRef(target), None)
    mapping = follow_chains(mapping)  # a pass-through of a pass-through
    index.drop_controls_from(dropped_controls)
    rewire(index, mapping)
    kept = reachable(index, protected)
    gone = {name for name in inputs if name not in kept}
    index.remove(gone)
    return len(gone)
