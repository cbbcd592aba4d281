"""``graphkit prune``: keep what the outputs need; optionally cut at inputs and strip training-only nodes."""

from __future__ import annotations

import os

from graphkit.errors import GraphkitError, about
from graphkit.io import GraphIndex, parse_ref, training
from graphkit.io.graph import TensorRef
from graphkit.io.passes import consumers_of, drop_dangling_colocations, drop_unused_library, reachable, rewire
from graphkit.io.save import Progress
from graphkit.io.spec import TensorSpec, parse_dims, parse_spec
from graphkit.io.spec import split_names as names
from graphkit.proto import node_def_pb2
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
            stripped = training.strip_training(result.graph_def, wanted)
            report.notes.append(f"strip-training removed {len(result.graph_def.node) - len(stripped.node)} nodes")
            result = GraphIndex(stripped)
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
