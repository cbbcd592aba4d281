"""``graphkit prune``: keep what the outputs need; optionally cut at inputs and strip training-only nodes."""

from __future__ import annotations

import os

from graphkit.errors import GraphkitError, about
from graphkit.io import GraphIndex, parse_ref
from graphkit.io.graph import (
    TensorRef,
    colocation_targets,
    consumers_of,
    drop_dangling_colocations,
    drop_unused_library,
    extract_subgraph,
    reachable,
    rewire,
)
from graphkit.io.ops import INFERENCE_IDENTITIES, SIDE_EFFECT_ONLY
from graphkit.io.save import Progress
from graphkit.io.spec import TensorSpec, parse_dims, parse_spec
from graphkit.io.spec import split_names as names
from graphkit.proto import graph_pb2, node_def_pb2
from graphkit.surgery.core import (
    SurgeryReport,
    default_outputs,
    drop_stale_shapes,
    finish,
    open_indexed,
    saver_nodes,
    spec_placeholder,
)


def prune(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    outputs: list[str] | None = None,
    inputs: list[str] | None = None,
    input_shapes: dict[str, str] | None = None,
    strip_training: bool = False,
    tags: list[str] | None = None,
    text: bool | None = None,
    scanner: bool = True,
    progress: Progress | None = None,
) -> SurgeryReport:
    """Keep only what ``outputs`` need (TF's extract_sub_graph: data, control and colocation inputs). With
    ``inputs`` (specs like ``name:float32[?,224,224,3]``), cut there: each becomes a Placeholder and what only
    fed it goes (strip_unused). ``strip_training`` also removes CheckNumerics, Identity-like pass-throughs
    and Assert/Print chains (remove_training_nodes, without its bugs). ``scanner=False`` keeps to the
    protobuf path (same result, slower on big graphs; the CLI maps ``GRAPHKIT_NO_SCANNER`` to it)."""
    with about(model_path):
        wanted = [parse_ref(n).node for n in names(outputs)]
        specs = [parse_spec(s) for s in names(inputs)]
        opened = open_indexed(model_path, tags, out, text=text, fast=scanner and not strip_training)
        model, index = opened.model, opened.index
        wanted = wanted or default_outputs(model, index)
        report = SurgeryReport("prune", outputs=wanted)
        for name in wanted:
            index.node(name)
        wanted = wanted + [n for n in saver_nodes(model, out) if n in index.nodes and n not in wanted]
        shapes = {parse_ref(k).tensor: parse_dims(v) for k, v in (input_shapes or {}).items()}
        if specs:
            changed = _cut(index, specs, shapes, report)
            result = index.restricted(reachable(index, wanted, colocations=False))
            drop_dangling_colocations(result)
            drop_stale_shapes(result, changed)
        else:
            result = index.restricted(reachable(index, wanted))
        if strip_training:
            assert result.graph_def is not None
            result = GraphIndex(_strip_training(result.graph_def, wanted, report))
        if result.graph_def is not None:
            dropped = drop_unused_library(result.graph_def)
            if dropped:
                report.notes.append(f"function library: {len(dropped)} unreferenced functions dropped")
        return finish(model, result, out, report, before=opened.before, text=text, progress=progress)


def _cut(index: GraphIndex, specs: list[TensorSpec], shapes: dict[str, tuple[int, ...]],
         report: SurgeryReport) -> set[str]:
    """Replace each input tensor by a Placeholder, in the index's graph (listed in the report as rewritten);
    returns the nodes changed. Port 0 of a node whose other outputs are unused: the Placeholder takes the
    node's name (strip_unused); otherwise it is named NODE_PORT and consumers are rewired."""
    mapping: dict[TensorRef, TensorRef] = {}
    replaced: dict[str, node_def_pb2.NodeDef] = {}
    for spec in specs:
        ref = spec.ref
        node = index.node(ref.node)
        if not consumers_of(index, ref) and node.op not in ("Placeholder",):
            raise GraphkitError(f"nothing reads '{ref}'; cut at a tensor the outputs use")
        ports = {parse_ref(index.inputs[u][i]).port for u, i in index.consumers.get(ref.node, [])}
        other_ports = ports - {ref.port}
        in_place = ref.port == 0 and not other_ports
        name = ref.node if in_place else f"{ref.node}_{ref.port}"
        if not in_place and name in index.nodes:
            raise GraphkitError(f"cannot name the new input '{name}': a node has that name")
        shape_spec = spec if spec.shape is not None or ref.tensor not in shapes else TensorSpec(
            ref, spec.dtype, shapes[ref.tensor])
        new = spec_placeholder(shape_spec, index, ref, name)
        replaced[name] = new
        if not in_place:
            mapping[ref] = TensorRef(name)
        report.rewritten.append(name)
    unknown = [k for k in shapes if parse_ref(k).node not in {s.ref.node for s in specs}]
    if unknown:
        raise GraphkitError(f"--input-shape names {', '.join(unknown)}, which is not among --inputs")
    changed = rewire(index, mapping) if mapping else set()
    in_place_names = [name for name in replaced if name in index.nodes]
    for name in in_place_names:
        index.nodes[name].CopyFrom(replaced.pop(name))
    index.refresh(in_place_names)
    index.add(list(replaced.values()))
    return changed | set(report.rewritten)


def _strip_training(gd: graph_pb2.GraphDef, protected: list[str], report: SurgeryReport) -> graph_pb2.GraphDef:
    """Splice out pass-throughs (Identity, StopGradient, CheckNumerics, Print...) and drop Assert/PrintV2
    control chains. Unlike TF's remove_training_nodes: consumers written ``id:0`` are rewired too, a
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
    # resolve chains: a pass-through of a pass-through
    for key, value in list(mapping.items()):
        seen = {key}
        while value in mapping and value not in seen:
            seen.add(value)
            value = mapping[value]
        mapping[key] = value
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
    result = extract_subgraph(out, protected)
    report.notes.append(f"strip-training removed {len(out.node) - len(result.node)} nodes")
    return result
