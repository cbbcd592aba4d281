"""Training-only nodes out of an inference graph: what ``prune --strip-training`` and ``optimize``'s
``strip-training`` pass do (TF's ``graph_util.remove_training_nodes``, without its bugs)."""

from __future__ import annotations

from graphkit.io.graph import GraphIndex, TensorRef, colocation_targets, parse_ref
from graphkit.io.ops import INFERENCE_IDENTITIES, SIDE_EFFECT_ONLY
from graphkit.io.passes import extract_subgraph, follow_chains
from graphkit.proto import graph_pb2


def strip_training(gd: graph_pb2.GraphDef, protected: list[str]) -> graph_pb2.GraphDef:
    """A copy of the graph with its pass-throughs spliced out (Identity, StopGradient, CheckNumerics,
    Print...) and its Assert/PrintV2 control chains dropped, cut to what ``protected`` needs. Unlike TF's
    remove_training_nodes: consumers written ``id:0`` are rewired too, a
    pass-through of output k keeps reading output k, and library and versions are kept."""
    index = GraphIndex(gd)
    keep = set(protected)
    mapping: dict[TensorRef, TensorRef] = {}
    dropped_controls = {n.name for n in gd.node if n.name not in keep and (
        n.op in SIDE_EFFECT_ONLY or n.op == "CheckNumerics"
        or (n.op in ("If", "StatelessIf") and n.name.endswith("AssertGuard")))}  # tf.debugging.Assert in TF2
    grew = True
    while grew:  # Identity/NoOp wrappers of those (AssertGuard/Identity, tf.group of asserts)
        grew = False
        for n in gd.node:
            if n.op in ("Identity", "NoOp") and n.input and n.name not in dropped_controls and n.name not in keep \
                    and all(parse_ref(i).node in dropped_controls for i in n.input):
                dropped_controls.add(n.name)
                grew = True
    for node in gd.node:
        if node.name in keep or node.op not in INFERENCE_IDENTITIES or not node.input:
            continue
        controls = [i for i in node.input if i.startswith("^") and i[1:] not in dropped_controls]
        if not controls and not index.control_consumers.get(node.name):
            mapping[TensorRef(node.name)] = parse_ref(node.input[0])
    # a node that stays and is colocated with a pass-through keeps it (TF does the same)
    going = dropped_controls | {k.node for k in mapping}
    for node in gd.node:
        if node.name not in going:
            for target in colocation_targets(node):
                mapping.pop(TensorRef(target), None)
    mapping = follow_chains(mapping)  # a pass-through of a pass-through
    out = graph_pb2.GraphDef()
    out.CopyFrom(gd)
    for node in out.node:
        new_inputs = []
        for text in node.input:
            ref = parse_ref(text)
            if ref.control and ref.node in dropped_controls:
                continue
            new_inputs.append(str(mapping.get(ref, ref)))
        if new_inputs != list(node.input):
            del node.input[:]
            node.input.extend(new_inputs)
    return extract_subgraph(out, protected)
