"""A TF1 graph's saver subgraph, made to match a checkpoint whose keys were renamed or dropped.

``tf.compat.v1.train.Saver`` builds (``python/training/saver.py`` BaseSaverBuilder): ``SaveV2(prefix,
tensor_names, shape_and_slices, *tensors)`` per device, and ``RestoreV2(prefix, tensor_names,
shape_and_slices)`` whose outputs feed ``Assign``/``AssignVariableOp`` nodes (through an Identity for
resource variables) grouped by the ``restore_op_name`` NoOp. ``Saver.restore`` runs that op; every key in
``tensor_names`` must be in the checkpoint. Renaming a key rewrites the two name lists (what a Saver built
with a ``{key: variable}`` dict has); dropping one takes it out of both ops with the nodes that restored it,
and re-numbers the RestoreV2 outputs the rest read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphkit.errors import GraphkitError
from graphkit.io.graph import GraphIndex, TensorRef, parse_ref
from graphkit.proto import graph_pb2, meta_graph_pb2, node_def_pb2

_V1_OPS = frozenset({"Save", "SaveSlices", "Restore", "RestoreSlice"})


@dataclass
class SaverEdit:
    """What :func:`retarget_saver_in_place` changed."""

    renamed: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # keys the saver no longer saves or restores
    variables_dropped: list[str] = field(default_factory=list)  # variable nodes no longer restored
    removed_nodes: list[str] = field(default_factory=list)


def saver_keys(meta: meta_graph_pb2.MetaGraphDef) -> list[str]:
    """The keys the meta graph's saver saves and restores (its RestoreV2 name lists), in order."""
    index = GraphIndex(meta.graph_def)
    keys: list[str] = []
    for node in _saver_ops(meta, index, "RestoreV2"):
        keys += _names(index, node)[1]
    return keys


def retarget_saver_in_place(meta: meta_graph_pb2.MetaGraphDef, keys: Mapping[str, str | None]) -> SaverEdit:
    """Make ``meta``'s saver save and restore each key ``k`` as ``keys[k]`` (None: not at all), in place.
    Every key the saver has must be in ``keys``. Variables no longer restored also leave the VariableDef
    collections, so a ``Saver()`` built after ``import_meta_graph`` agrees with the checkpoint."""
    out = meta
    index = GraphIndex(out.graph_def)
    edit = SaverEdit()
    removed: set[str] = set()
    for op in ("SaveV2", "RestoreV2"):
        for node in _saver_ops(out, index, op):
            _check_lengths(index, node)
    missing = [k for op in ("SaveV2", "RestoreV2") for node in _saver_ops(out, index, op)
               for k in _names(index, node)[1] if k not in keys]
    if missing:
        raise GraphkitError(f"the graph's saver has keys the checkpoint lacks: {', '.join(sorted(set(missing))[:5])}"
                            " (give the graph this checkpoint was saved from)")
    for node in _saver_ops(out, index, "SaveV2"):
        keep = _rewrite_lists(index, node, keys, edit)
        rest = list(node.input[3:])
        del node.input[3:]
        node.input.extend([t for t, ok in zip(rest[:len(keep)], keep, strict=True) if ok] + rest[len(keep):])
    for node in _saver_ops(out, index, "RestoreV2"):
        keep = _rewrite_lists(index, node, keys, edit)
        new_port: dict[int, int] = {}
        for old, ok in enumerate(keep):
            if ok:
                new_port[old] = len(new_port)
        for consumer, slot in index.consumers.get(node.name, ()):
            port = parse_ref(index.nodes[consumer].input[slot]).port
            if port in new_port:
                index.nodes[consumer].input[slot] = str(TensorRef(node.name, new_port[port]))
            else:
                removed |= _restore_chain(index, consumer, edit)
    if removed:
        _remove_nodes(out.graph_def, removed)
        edit.removed_nodes = sorted(removed)
        _drop_variable_defs(out, set(edit.variables_dropped))
    edit.dropped = sorted(set(edit.dropped))
    return edit


def _saver_ops(meta: meta_graph_pb2.MetaGraphDef, index: GraphIndex, op: str) -> list[node_def_pb2.NodeDef]:
    """The saver's ``op`` nodes: those under the scope of ``saver_def.restore_op_name`` (``save/``)."""
    restore = meta.saver_def.restore_op_name
    if not restore:
        raise GraphkitError("the graph has no saver (no saver_def in the MetaGraphDef)")
    scope = restore.rsplit("/", 1)[0] + "/" if "/" in restore else ""
    in_scope = [index.nodes[n] for n in index.nodes if n.startswith(scope)]
    old = sorted({n.op for n in in_scope if n.op in _V1_OPS})
    if old:
        raise GraphkitError(f"the graph's saver uses {', '.join(old)} (a V1-format saver); only V2 savers "
                            "(SaveV2/RestoreV2) can be edited")
    return [n for n in in_scope if n.op == op]


def _names(index: GraphIndex, node: node_def_pb2.NodeDef) -> tuple[node_def_pb2.NodeDef, list[str]]:
    consts = [index.nodes.get(parse_ref(i).node) for i in node.input[1:3]]
    if len(consts) != 2 or any(c is None or c.op != "Const" for c in consts):
        raise GraphkitError(f"saver node '{node.name}': its tensor_names/shape_and_slices are not constants")
    names_node = consts[0]
    assert names_node is not None
    return names_node, [s.decode("utf-8", "replace") for s in names_node.attr["value"].tensor.string_val]


def _check_lengths(index: GraphIndex, node: node_def_pb2.NodeDef) -> None:
    """A saver op's name, slice and dtype lists (and SaveV2's tensors) are one length, or the file is corrupt."""
    _, names = _names(index, node)
    slices = index.nodes[parse_ref(node.input[2]).node].attr["value"].tensor.string_val
    types = node.attr["dtypes"].list.type if "dtypes" in node.attr else []
    data = [i for i in node.input[3:] if not i.startswith("^")]
    lengths = {len(names), len(slices), len(types)} | ({len(data)} if node.op == "SaveV2" else set())
    if len(lengths) != 1:
        raise GraphkitError(f"saver node '{node.name}': its tensor_names ({len(names)}), shape_and_slices "
                            f"({len(slices)}) and dtypes ({len(types)}) disagree; the file is corrupt")


def _rewrite_lists(index: GraphIndex, node: node_def_pb2.NodeDef, keys: Mapping[str, str | None],
                   edit: SaverEdit) -> list[bool]:
    """Rewrite a SaveV2/RestoreV2's name and slice lists and its dtypes; returns which entries stay."""
    names_node, names = _names(index, node)
    slices_node = index.nodes[parse_ref(node.input[2]).node]
    for const in (names_node, slices_node):
        users = [u for u, _ in index.consumers.get(const.name, ()) if u != node.name]
        if users:
            raise GraphkitError(f"saver constant '{const.name}' is shared with {users[0]}; cannot edit it")
    slices = list(slices_node.attr["value"].tensor.string_val)
    types = list(node.attr["dtypes"].list.type)
    keep = [keys[k] is not None for k in names]
    for k in names:
        target = keys[k]
        if target is None:
            edit.dropped.append(k)
        elif target != k:
            edit.renamed[k] = target
    for const, values in ((names_node, [(keys[k] or "").encode() for k in names]), (slices_node, slices)):
        tensor = const.attr["value"].tensor
        del tensor.string_val[:]
        tensor.string_val.extend(v for v, ok in zip(values, keep, strict=True) if ok)
        del tensor.tensor_shape.dim[:]
        tensor.tensor_shape.dim.add(size=sum(keep))
        if "_output_shapes" in const.attr:
            del const.attr["_output_shapes"]
    del node.attr["dtypes"].list.type[:]
    node.attr["dtypes"].list.type.extend(t for t, ok in zip(types, keep, strict=True) if ok)
    if "_output_shapes" in node.attr:
        del node.attr["_output_shapes"]
    return keep


def _restore_chain(index: GraphIndex, start: str, edit: SaverEdit) -> set[str]:
    """``start`` and the nodes that read it (an Identity, then the Assign): what restored one dropped
    key. The variable an Assign wrote is noted."""
    chain, stack = set(), [start]
    while stack:
        name = stack.pop()
        if name in chain:
            continue
        chain.add(name)
        node = index.nodes[name]
        if node.op in ("Assign", "AssignVariableOp") and node.input:
            edit.variables_dropped.append(parse_ref(node.input[0]).node)
        stack += [consumer for consumer, _ in index.consumers.get(name, ())]
    return chain


def _remove_nodes(graph_def: graph_pb2.GraphDef, removed: set[str]) -> None:
    kept = [n for n in graph_def.node if n.name not in removed]
    for node in kept:
        inputs = [i for i in node.input if parse_ref(i).node not in removed]
        if len(inputs) != len(node.input):
            del node.input[:]
            node.input.extend(inputs)
    del graph_def.node[:]
    graph_def.node.extend(kept)


def _drop_variable_defs(meta: meta_graph_pb2.MetaGraphDef, variables: set[str]) -> None:
    from graphkit.io.roles import parse_variable_defs

    for col in meta.collection_def.values():
        if not col.HasField("bytes_list"):
            continue
        vdefs = parse_variable_defs(col)
        if vdefs is None or not all(v.variable_name for v in vdefs):
            continue
        kept = [v.SerializeToString() for v in vdefs if parse_ref(v.variable_name).node not in variables]
        if len(kept) != len(vdefs):
            del col.bytes_list.value[:]
            col.bytes_list.value.extend(kept)
