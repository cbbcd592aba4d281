"""``graphkit remap-input``: import_graph_def's input_map on a GraphDef (docs/formats.md, section 4)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from graphkit.errors import GraphkitError, about
from graphkit.io import GraphIndex, dtypes, parse_ref
from graphkit.io.checks import topological_order
from graphkit.io.graph import TensorRef
from graphkit.io.passes import drop_dangling_colocations, reachable
from graphkit.io.roles import output_dtype
from graphkit.io.save import Progress
from graphkit.io.spec import parse_spec
from graphkit.io.spec import split_names as names
from graphkit.proto import node_def_pb2

if TYPE_CHECKING:
    import numpy as np

from graphkit.io.passes import rewire
from graphkit.surgery.core import (
    SurgeryReport,
    check_dtype,
    default_outputs,
    drop_stale_shapes,
    finish,
    open_indexed,
    require_used,
    saver_nodes,
    spec_placeholder,
)


def remap_input(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    placeholders: dict[str, str] | None = None,
    maps: dict[str, str] | None = None,
    constants: dict[str, np.ndarray] | None = None,
    outputs: list[str] | None = None,
    tags: list[str] | None = None,
    text: bool | None = None,
    scanner: bool = True,
    progress: Progress | None = None,
) -> SurgeryReport:
    """Replace tensors as ``tf.import_graph_def(input_map=...)`` does, on the GraphDef:

    - ``placeholders``: OLD -> ``NAME[:DTYPE][DIMS]`` spec, a new Placeholder (dtype/shape default to OLD's);
    - ``maps``: OLD -> NEW, an existing tensor of the graph (``^OLD`` -> ``^NEW`` for control inputs);
    - ``constants``: OLD -> array, a new Const named after OLD's node.

    What only fed the replaced tensors is removed (the graph is pruned to ``outputs``, default: the original's
    likely outputs). Unused keys and dtype mismatches are errors, as in TF. ``scanner``: as for prune."""
    with about(model_path):
        wanted = [parse_ref(n).node for n in names(outputs)]
        opened = open_indexed(model_path, tags, out, text=text, fast=scanner)
        model, index = opened.model, opened.index
        wanted = wanted or default_outputs(model, index)
        report = SurgeryReport("remap-input", outputs=wanted)
        for name in wanted:
            index.node(name)
        wanted = wanted + [n for n in saver_nodes(model, out) if n in index.nodes and n not in wanted]
        if not (placeholders or maps or constants):
            raise GraphkitError("nothing to remap: give --placeholder, --map or --constant")
        mapping, new_nodes = _replacements(index, placeholders or {}, maps or {}, constants or {})
        result, changed = _apply(index, mapping, new_nodes, wanted)
        if maps:
            topological_order(result)  # a --map that made a cycle is an error here (new nodes have no inputs)
        report.rewritten = sorted(n for n in changed if n in result.nodes)
        return finish(model, result, out, report, before=opened.before, text=text, progress=progress)


def _replacements(index: GraphIndex, placeholders: dict[str, str], maps: dict[str, str],
                  constants: dict[str, np.ndarray]) -> tuple[dict[TensorRef, TensorRef], list[node_def_pb2.NodeDef]]:
    """Each replaced tensor -> what replaces it, and the new nodes (Placeholders, Consts); every key must be
    read by something and every replacement of the dtype it replaces, as import_graph_def requires."""
    mapping: dict[TensorRef, TensorRef] = {}
    new_nodes: list[node_def_pb2.NodeDef] = []
    for old_text, spec_text in placeholders.items():
        old = _key(index, old_text)
        spec = parse_spec(spec_text)
        new = spec_placeholder(spec, index, old, spec.name)
        check_dtype(index, old, new.attr["dtype"].type, f"the placeholder '{spec.name}'")
        new_nodes.append(new)
        mapping[old] = TensorRef(spec.name)
    for old_text, new_text in maps.items():
        old = _key(index, old_text)
        target = parse_ref(new_text)
        if target.control != old.control:
            raise GraphkitError(f"--map {old_text}={new_text}: map a tensor to a tensor, ^control to ^control")
        producer = index.node(target.node)
        if not target.control:
            check_dtype(index, old, output_dtype(producer, target.port), f"'{target}'")
        mapping[old] = target
    for old_text, value in constants.items():
        old = _key(index, old_text)
        name = old.node if old.port == 0 else f"{old.node}_{old.port}"
        import numpy as np

        value = np.asarray(value)
        check_dtype(index, old, dtypes.from_numpy(value.dtype), f"the constant from {old_text}")
        from graphkit.io.tensors import const_node

        new_nodes.append(const_node(name, value))
        mapping[old] = TensorRef(name)
    return mapping, new_nodes


def _apply(index: GraphIndex, mapping: dict[TensorRef, TensorRef], new_nodes: list[node_def_pb2.NodeDef],
           wanted: list[str]) -> tuple[GraphIndex, set[str]]:
    """Rewire the readers (in ``index``, in place), add the new nodes and keep what ``wanted`` needs; the
    result and the nodes whose inputs changed. New nodes may take the name of a node the rewiring frees (a
    Const replacing Placeholder 'x'): they are built under temporary names, the graph pruned, and only then
    checked for collisions."""
    temp = {n.name: f"{n.name}/__graphkit_new__" for n in new_nodes if n.name in index.nodes}
    for node in new_nodes:
        node.name = temp.get(node.name, node.name)
    mapping = {k: (TensorRef(temp[v.node], v.port, v.control) if v.node in temp else v) for k, v in mapping.items()}
    changed = rewire(index, mapping)
    index.add(new_nodes)
    result = index.restricted(reachable(index, wanted, colocations=False))
    clashes = [final for final, tmp in temp.items() if final in result.nodes]
    if clashes:
        raise GraphkitError(f"new node name(s) {', '.join(clashes)} already used by nodes the outputs still need; "
                            "choose another name")
    if temp:
        rewire(result, {TensorRef(tmp): TensorRef(final) for final, tmp in temp.items()})
        for final, tmp in temp.items():
            if tmp in result.nodes:
                result.rename_node(tmp, final)
    drop_dangling_colocations(result)
    drop_stale_shapes(result, [n for n in changed if n in result.nodes])
    return result, changed


def _key(index: GraphIndex, text: str) -> TensorRef:
    ref = parse_ref(text)
    require_used(index, ref)
    return ref
