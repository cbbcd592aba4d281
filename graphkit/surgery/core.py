"""What every surgery command shares: loading a graph, rewiring tensors (import_graph_def's input_map on a
GraphDef), stale-attr clean-up, the report, and writing the result in the input's kind.

Output kinds: OUT ending in .pb/.pbtxt is a GraphDef, .meta a MetaGraphDef (the input's signatures,
collections and saver kept where their nodes still exist), and a folder for a SavedModel input.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from graphkit.errors import GraphkitError
from graphkit.io import Graph, GraphIndex, Model, dtypes, load, parse_ref, save_graph
from graphkit.io.checks import check_importable, unknown_ops_note
from graphkit.io.graph import TensorRef, as_index
from graphkit.io.passes import consumers_of
from graphkit.io.roles import PLACEHOLDER_OPS, graph_inputs, likely_outputs, output_dtype
from graphkit.io.save import Progress, is_text_path, save_saved_model
from graphkit.io.scan import TableIndex, scan_graph_file, write_table
from graphkit.io.shapes import shape_proto
from graphkit.io.spec import TensorSpec
from graphkit.proto import graph_pb2, meta_graph_pb2, node_def_pb2

if TYPE_CHECKING:
    pass

GRAPH_SUFFIXES = (".pb", ".pbtxt", ".pbtext", ".txt", ".graphdef")


@dataclass
class SurgeryReport:
    """What a surgery command did; the CLI prints it, tests assert it."""

    command: str
    output_path: str = ""
    nodes_before: int = 0
    nodes_after: int = 0
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bytes_written: int = 0
    checkpoint_files: list[str] = field(default_factory=list)  # rename --checkpoint-out: the files written


def open_graph(path: str | os.PathLike[str], tags: list[str] | None = None,
               fix: str = "give the .meta or a GraphDef") -> Model:
    """A model with a graph (a checkpoint's weights are never read: surgery is graph-only)."""
    model = load(path, tags=tags, verify=False)
    model.require_graph(fix)
    return model


def ref_dtype(index: GraphIndex, ref: TensorRef) -> int | None:
    return output_dtype(index.node(ref.node), ref.port)


def check_dtype(index: GraphIndex, old: TensorRef, new_dtype: int | None, what: str) -> None:
    """A replacement must have the dtype OLD's consumers take (when both are known)."""
    if old.control or new_dtype is None:
        return
    want = ref_dtype(index, old)
    if want is not None and dtypes.base(want) != dtypes.base(new_dtype):
        users = consumers_of(index, old)
        user = f"'{users[0]}' ({index.nodes[users[0]].op}) takes" if users else "it is"
        raise GraphkitError(f"{user} {dtypes.name(want)} from '{old.tensor}', but {what} is {dtypes.name(new_dtype)}; "
                            f"give a {dtypes.name(want)} replacement or replace a later tensor")


def require_used(index: GraphIndex, old: TensorRef) -> None:
    """TF's import_graph_def: a key that matches no input is an error."""
    if old.node not in index.nodes:
        raise GraphkitError(f"'{old.node}' is not in the graph{index.suggest(old.node)}")
    if not consumers_of(index, old):
        shown = str(old) if old.control else old.tensor
        raise GraphkitError(f"nothing in the graph reads '{shown}', so there is nothing to replace "
                            "(TF's import_graph_def refuses unused input_map keys too)")


def placeholder(name: str, code: int, shape: tuple[int, ...] | None) -> node_def_pb2.NodeDef:
    node = node_def_pb2.NodeDef(name=name, op="Placeholder")
    node.attr["dtype"].type = dtypes.base(code)  # type: ignore[assignment]
    node.attr["shape"].shape.CopyFrom(shape_proto(shape))
    return node


def spec_placeholder(spec: TensorSpec, index: GraphIndex, old: TensorRef, name: str) -> node_def_pb2.NodeDef:
    """A Placeholder from a spec, its dtype/shape defaulting to what OLD produced (dtype must be known)."""
    from graphkit.io.roles import output_shape

    code = spec.dtype if spec.dtype is not None else ref_dtype(index, old)
    if code is None:
        raise GraphkitError(f"cannot tell the dtype of '{old}' from its node's attrs; give it, e.g. "
                            f"{name}:float32[?,224,224,3]")
    shape = spec.shape if spec.shape is not None else output_shape(index.node(old.node), old.port)
    return placeholder(name, code, shape)


def drop_stale_shapes(graph: graph_pb2.GraphDef | GraphIndex, changed: Iterable[str]) -> int:
    """Delete ``_output_shapes`` on ``changed`` nodes and everything downstream of them (TF re-infers shapes
    and only validates recorded ones), in place (an index is refreshed). Returns how many nodes lost it."""
    index = as_index(graph)
    if not index.shaped:
        return 0
    queue = deque(n for n in changed if n in index.nodes)
    seen = set(queue)
    stale = []
    while queue:
        name = queue.popleft()
        if name in index.shaped:
            stale.append(name)
        for user, _ in index.consumers.get(name, []):
            if user not in seen:
                seen.add(user)
                queue.append(user)
    for name in stale:
        del index.nodes[name].attr["_output_shapes"]
    index.refresh(stale)
    return len(stale)


def sinks(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Nodes nothing reads: the outputs to keep when the user names none."""
    index = as_index(graph)
    return [name for name in index.inputs if not index.is_consumed(name)]


def default_outputs(model: Model, index: GraphIndex) -> list[str]:
    """The outputs to keep when the user names none: the likely outputs, else every sink; an error when
    there is neither (every node feeds another, as in a graph that is one cycle), never an empty graph."""
    found = [o.name for o in likely_outputs(index, model.meta_graph)] or sinks(index)
    if not found and index.inputs:
        raise GraphkitError("cannot tell the graph's outputs (every node feeds another); name them with --outputs",
                            model.path)
    return found


def writes_meta(model: Model, out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` will be a MetaGraphDef or SavedModel (see the module docstring)."""
    target = str(out)
    return target.endswith(".meta") or (model.format == "savedmodel" and not target.lower().endswith(GRAPH_SUFFIXES))


def saver_nodes(model: Model, out: str | os.PathLike[str]) -> list[str]:
    """When the result keeps a MetaGraphDef, the saver's save and restore ops stay, so the result can still
    restore its checkpoint; so do the variables' initializers and snapshots that import_meta_graph looks up."""
    from graphkit.io.roles import variable_defs

    meta = model.meta_graph
    if meta is None or not meta.saver_def.restore_op_name or not writes_meta(model, out):
        return []
    names = [parse_ref(meta.saver_def.restore_op_name).node, parse_ref(meta.saver_def.save_tensor_name).node]
    for vdef in variable_defs(meta):
        names += [parse_ref(t).node for t in (vdef.initializer_name, vdef.snapshot_name) if t]
    return names


@dataclass
class Opened:
    """What a surgery pass works on. ``index`` is over the command's own freshly loaded graph (or a scanned
    file's table): the pass may edit it in place, nothing else holds it. ``before`` is the node names as
    loaded, which the report's removed/added lists are computed from, whatever the pass did to the graph."""

    model: Model
    index: GraphIndex
    before: list[str]


def loaded_names(model: Model) -> list[str]:
    """The model's node names as loaded (call before a pass edits its graph): ``finish``'s ``before``."""
    return [n.name for n in model.require_graph().graph_def.node]


def open_indexed(path: str | os.PathLike[str], tags: list[str] | None, out: str | os.PathLike[str], *,
                 text: bool | None, fast: bool, fix: str = "give the .meta or a GraphDef") -> Opened:
    """The model, an index the pass may edit in place, and the names as loaded (:class:`Opened`).

    ``fast``: the caller's pass runs on any index. Then a binary GraphDef file written to a binary GraphDef
    is indexed by the compiled scanner (:mod:`graphkit.io.scan`): nodes are parsed only when a pass asks for
    them and unchanged ones are copied as bytes. Anything else, or no scanner, takes the protobuf path."""
    binary_out = not is_text_path(out) if text is None else not text
    if fast and binary_out and not str(out).endswith(".meta"):
        table = scan_graph_file(path)
        if table is not None and not table.has_library:  # the library path prunes unused functions
            model = Model(path=Path(path), format="graphdef", files=[Path(path)])
            return Opened(model, _checked(TableIndex(table), path), list(table.names))
    model = open_graph(path, tags, fix)
    before = loaded_names(model)
    return Opened(model, _checked(GraphIndex(model.require_graph().graph_def), path), before)


def _checked(index: GraphIndex, path: str | os.PathLike[str]) -> GraphIndex:
    """The input's own problems TF's importer refuses and no pass would mend: duplicate node names (a pass
    would keep one of them silently), and no nodes at all (an empty or damaged file)."""
    if not index.inputs:
        raise GraphkitError("the graph holds no nodes (an empty or damaged file?)", path)
    if index.duplicates:
        shown = ", ".join(f"'{n}'" for n in dict.fromkeys(index.duplicates))
        raise GraphkitError(f"the graph has more than one node named {shown}; TensorFlow refuses it -- rename "
                            "one of them first", path)
    return index


def finish(model: Model, result: Graph | GraphIndex, out: str | os.PathLike[str], report: SurgeryReport, *,
           before: list[str], text: bool | None = None, progress: Progress | None = None,
           rename: Callable[[str], str] | None = None) -> SurgeryReport:
    """Validate, fill the report, and write the result in the input's kind (see the module docstring).
    ``result``: a graph (its payloads still in the input files), or an up-to-date index of one; ``before``:
    the node names the pass was given (:class:`Opened`, :func:`loaded_names`), for the report."""
    if isinstance(result, TableIndex):
        index: GraphIndex = result
    else:
        loaded = model.require_graph()
        if isinstance(result, GraphIndex):
            assert result.graph_def is not None
            index, graph = result, Graph(result.graph_def, dict(loaded.external))
        else:
            index, graph = GraphIndex(result.graph_def), result
    check_importable(index, out)
    report.notes += unknown_ops_note(index)
    _fill_report(report, index, before, rename)
    report.output_path = os.fspath(out)
    if isinstance(result, TableIndex):  # open_indexed took the scanner only for a binary GraphDef output
        report.bytes_written = write_table(result, out, progress=progress)
    else:
        if not report.outputs:
            report.outputs = [o.name for o in likely_outputs(graph.graph_def)][:10]
        report.bytes_written = _write(model, graph, set(index.inputs), out, report, text, progress, rename)
    return report


def _fill_report(report: SurgeryReport, index: GraphIndex, before: list[str],
                 rename: Callable[[str], str] | None) -> None:
    """Node counts, removed and added nodes (``before`` as the pass was given it, through ``rename``), and
    the result's inputs."""
    after = index.inputs  # keys: the node names
    report.nodes_before = len(before)
    report.nodes_after = len(after)
    renamed = before if rename is None else [rename(n) for n in before]
    report.removed = [n for n, new in zip(before, renamed, strict=True) if new not in after]
    renamed_before = set(renamed)
    report.added = [n for n in after if n not in renamed_before]
    placeholders = [index.nodes[n] for n, op in index.ops.items() if op in PLACEHOLDER_OPS]
    report.inputs = [{"name": i.name, "dtype": i.dtype, "shape": None if i.shape is None else list(i.shape)}
                     for i in graph_inputs(placeholders)]


def _write(model: Model, graph: Graph, names: set[str], out: str | os.PathLike[str], report: SurgeryReport,
           text: bool | None, progress: Progress | None, rename: Callable[[str], str] | None) -> int:
    """Write the result in the input's kind: a GraphDef, a .meta, or a SavedModel folder (the meta graph's
    signatures, collections and saver retargeted to the result's ``names``). Returns bytes written."""
    meta = model.meta_graph
    if writes_meta(model, out):
        if meta is None:
            raise GraphkitError("a .meta output needs a MetaGraphDef, SavedModel or checkpoint input; "
                                "write a .pb instead", out)
        new_meta = retarget_meta(meta, names, rename or (lambda name: name), report)
        if str(out).endswith(".meta"):
            return save_graph(graph, out, inputs=model.files, meta_graph=new_meta,
                              text=False if text is None else text, progress=progress)
        return save_saved_model(graph, new_meta, model.path, out, progress=progress)
    if model.format == "savedmodel" and report.command == "rename" and meta is not None and meta.signature_def:
        report.notes.append("a GraphDef has no signatures; write a SavedModel folder to keep them")
    return save_graph(graph, out, inputs=model.files, text=text, progress=progress)


def retarget_meta(meta: meta_graph_pb2.MetaGraphDef, names: set[str], rename: Callable[[str], str],
                  report: SurgeryReport) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef without its graph, with signature/collection/saver names renamed, and entries whose
    nodes are gone dropped (each drop noted)."""
    out = meta_graph_pb2.MetaGraphDef()
    out.CopyFrom(meta)
    out.ClearField("graph_def")

    def tensor(name: str) -> str | None:
        ref = parse_ref(name)
        new = rename(ref.node)
        return f"{new}:{ref.port}" if new in names else None

    for key in list(out.signature_def):
        sig = out.signature_def[key]
        ok = True
        for infos in (sig.inputs, sig.outputs):
            for info in infos.values():
                if info.name:
                    new = tensor(info.name)
                    if new is None:
                        ok = False
                    else:
                        info.name = new
        if not ok:
            del out.signature_def[key]
            report.notes.append(f"signature '{key}' dropped: its tensors are gone")
    for key in list(out.collection_def):
        col = out.collection_def[key]
        if col.HasField("node_list"):
            kept = [t for t in (tensor(v) if ":" in v else (rename(v) if rename(v) in names else None)
                                for v in col.node_list.value) if t]
            del col.node_list.value[:]
            col.node_list.value.extend(kept)
        elif col.HasField("bytes_list") and key in ("cond_context", "while_context", "savers", "queue_runners"):
            del out.collection_def[key]  # control-flow contexts are rebuilt from the graph; not needed to run
        elif col.HasField("bytes_list"):
            _retarget_variables(col, names, rename)
    saver = out.saver_def
    if saver.filename_tensor_name:
        parts = [saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name]
        mapped = [tensor(p) if ":" in p else (rename(p) if rename(p) in names else None) for p in parts]
        if all(mapped):
            saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name = mapped  # type: ignore[assignment]
        else:
            out.ClearField("saver_def")
            report.notes.append("saver dropped: its nodes are gone")
    return out


def _retarget_variables(col: meta_graph_pb2.CollectionDef, names: set[str], rename: Callable[[str], str]) -> None:
    from graphkit.io.roles import parse_variable_defs

    vdefs = parse_variable_defs(col)
    if vdefs is None or not all(v.variable_name for v in vdefs):  # not VariableDefs: leave the collection as is
        return
    kept = []
    for vdef in vdefs:
        fields = ["variable_name", "initial_value_name", "initializer_name", "snapshot_name"]
        values = [getattr(vdef, f) for f in fields]
        if rename(parse_ref(vdef.variable_name).node) not in names:
            continue
        for f, v in zip(fields, values, strict=True):
            if v:
                ref = parse_ref(v)
                setattr(vdef, f, f"{rename(ref.node)}:{ref.port}" if ":" in v else rename(ref.node))
        kept.append(vdef.SerializeToString())
    del col.bytes_list.value[:]
    col.bytes_list.value.extend(kept)
