"""What changed between two models, TF-free: nodes added and removed, nodes renamed (same op, attrs and
inputs up to the rename), nodes whose op, inputs, device or attrs changed, constants whose values changed,
functions of the library and signatures added, removed or changed, and checkpoint tensors that changed
(shape, dtype, values: the max absolute difference). Caffe nets compare layer by layer, their blobs as
constants. A summary by top-level name scope comes first ("train/: 240 added, all Assign/Add"): the usual
question is which part of a graph grew, as when ops are made inside a training loop (``graph.finalize()``
stops that).

Equal things are told by their bytes before anything is decoded: a binary GraphDef's nodes are compared
as the scanner found them in the file (only nodes whose bytes differ are parsed), checkpoint tensors by
their stored CRC32C, so two large models that mostly agree are compared without reading most of them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from graphkit.errors import GraphkitError, about
from graphkit.io.checkpoint import Checkpoint
from graphkit.io.graph import Graph, TensorRef, parse_ref
from graphkit.io.loader import Model, load
from graphkit.proto import function_pb2, graph_pb2, meta_graph_pb2, node_def_pb2

if TYPE_CHECKING:
    import numpy as np

    from graphkit.io.caffe import CaffeNet
    from graphkit.io.scan import NameTable


@dataclass
class NodeChange:
    """A node (or Caffe layer) in both that differs: which of its parts (op, inputs, device, attr names;
    for a layer: type, bottoms, tops, params)."""

    name: str
    op: str  # in B
    changed: list[str]  # "op", "inputs", "device", "attr:<name>"


@dataclass
class Renamed:
    """A node of A found in B under another name: same op, device, attrs and inputs (up to the renames)."""

    a: str
    b: str
    op: str


@dataclass
class TensorChange:
    """A constant (node name), Caffe blob (``layer/N``) or checkpoint tensor (key) whose value differs."""

    name: str
    what: str  # "value", "shape", "dtype"
    a: str  # dtype and shape in A, e.g. "float32[3,4]"
    b: str
    max_abs: float | None = None  # for "value" of numeric tensors


@dataclass
class SignatureChange:
    """One part of a signature present in both that differs."""

    signature: str
    part: str  # "input x", "output y", "method"
    a: str  # "" when the part is new in B
    b: str  # "" when the part is gone in B


@dataclass
class DiffReport:
    """What ``diff`` found; ``equal`` when nothing differs. Every field is always present (empty when it
    does not apply); the README documents it as the ``--json`` schema."""

    a: str
    b: str
    kind: Literal["tensorflow", "caffe"] = "tensorflow"
    equal: bool = True
    added: list[str] = field(default_factory=list)  # node (layer) names in B only
    removed: list[str] = field(default_factory=list)  # node (layer) names in A only
    renamed: list[Renamed] = field(default_factory=list)  # not counted in added/removed
    changed: list[NodeChange] = field(default_factory=list)
    constants: list[TensorChange] = field(default_factory=list)
    functions_added: list[str] = field(default_factory=list)
    functions_removed: list[str] = field(default_factory=list)
    functions_changed: list[str] = field(default_factory=list)
    signatures_added: list[str] = field(default_factory=list)
    signatures_removed: list[str] = field(default_factory=list)
    signatures_changed: list[SignatureChange] = field(default_factory=list)
    tensors_added: list[str] = field(default_factory=list)  # checkpoint keys in B only
    tensors_removed: list[str] = field(default_factory=list)
    tensors: list[TensorChange] = field(default_factory=list)  # largest max_abs first
    scopes: list[str] = field(default_factory=list)  # the summary lines, by top-level scope

    def differs(self) -> bool:
        return any((self.added, self.removed, self.renamed, self.changed, self.constants, self.functions_added,
                    self.functions_removed, self.functions_changed, self.signatures_added,
                    self.signatures_removed, self.signatures_changed, self.tensors_added, self.tensors_removed,
                    self.tensors))


def diff(a: str | os.PathLike[str], b: str | os.PathLike[str], *, tags: list[str] | None = None,
         scanner: bool = True) -> DiffReport:
    """Compare model ``a`` with model ``b`` (any format graphkit loads, or two Caffe nets): their graphs
    when both have one, their checkpoints when both have one (a checkpoint with its .meta against a
    checkpoint alone compares the tensors). ``scanner``: compare binary GraphDefs from the compiled
    scanner's view of the files (False: always parse them)."""
    with about(f"{a} vs {b}"):
        report = DiffReport(os.fspath(a), os.fspath(b))
        from graphkit.io.caffe import is_caffe_prototxt

        caffe = [is_caffe_prototxt(p) or str(p).endswith(".caffemodel") for p in (a, b)]
        if any(caffe):
            if not all(caffe):
                raise GraphkitError("one side is a Caffe net and the other is not; compare like with like")
            _diff_caffe(a, b, report)
        else:
            _diff_tensorflow(a, b, tags, scanner, report)
        report.equal = not report.differs()
        return report


def _diff_tensorflow(a: str | os.PathLike[str], b: str | os.PathLike[str], tags: list[str] | None, scanner: bool,
                     report: DiffReport) -> None:
    sides = [_table_side(p) if scanner else None for p in (a, b)]
    if sides[0] is not None and sides[1] is not None:
        _diff_graphs(sides[0], sides[1], report)
        report.scopes = _scope_summary(report, sides[1].op)
        return
    ma, mb = _load(a, tags), _load(b, tags)
    graphs = ma.graph is not None and mb.graph is not None
    checkpoints = ma.checkpoint is not None and mb.checkpoint is not None
    if not (graphs or checkpoints):
        raise GraphkitError("one side is a graph and the other a checkpoint alone; compare like with like")
    op_b: Callable[[str], str] = lambda name: "?"  # noqa: E731
    if graphs:
        assert ma.graph is not None and mb.graph is not None
        sa, sb = _GraphSide.of_model(ma), _GraphSide.of_model(mb)
        _diff_graphs(sa, sb, report)
        _diff_signatures(ma.meta_graph, mb.meta_graph, report)
        op_b = sb.op
    if checkpoints:
        assert ma.checkpoint is not None and mb.checkpoint is not None
        _diff_checkpoints(ma.checkpoint, mb.checkpoint, report)
    report.scopes = _scope_summary(report, op_b)


def _load(path: str | os.PathLike[str], tags: list[str] | None) -> Model:
    model = load(path, tags=tags)
    if model.graph is None and model.checkpoint is None:
        raise GraphkitError("nothing to compare here", path)
    return model


class _GraphSide:
    """One graph as diff reads it: node names in order, each node parsed on demand, its bytes in the file
    when known (a scanned binary GraphDef), the library's functions."""

    def __init__(self, names: list[str], graph: Graph | None = None, table: NameTable | None = None,
                 library: function_pb2.FunctionDefLibrary | None = None) -> None:
        self.names, self.graph, self.table = names, graph, table
        self.nodes: dict[str, node_def_pb2.NodeDef] = (
            {n.name: n for n in graph.graph_def.node} if graph is not None else {})
        self._positions: dict[str, int] | None = None
        self.functions = {f.signature.name: f for f in (library.function if library is not None else ())}

    @classmethod
    def of_model(cls, model: Model) -> _GraphSide:
        graph = model.graph
        assert graph is not None
        return cls([n.name for n in graph.graph_def.node], graph, library=graph.graph_def.library)

    @property
    def positions(self) -> dict[str, int]:
        if self._positions is None:
            self._positions = {name: i for i, name in enumerate(self.names)}
        return self._positions

    def node(self, name: str) -> node_def_pb2.NodeDef:
        if name not in self.nodes:
            assert self.table is not None
            self.nodes[name] = self.table.node(self.positions[name])
        return self.nodes[name]

    def op(self, name: str) -> str:
        return self.node(name).op

    def const(self, node: node_def_pb2.NodeDef) -> np.ndarray:
        return (self.graph or Graph(graph_pb2.GraphDef())).const(node)


def _table_side(path: str | os.PathLike[str]) -> _GraphSide | None:
    """A binary GraphDef through the compiled scanner's name table (None: not one, no scanner, or a name
    given twice: load it instead, which says so)."""
    from graphkit.io.scan import scan_node_names

    table = scan_node_names(path)
    if table is None or len(set(table.names)) != len(table.names):
        return None
    return _GraphSide(table.names, table=table, library=table.header_graph().library)


def _diff_graphs(sa: _GraphSide, sb: _GraphSide, report: DiffReport) -> None:
    in_a, in_b = set(sa.names), set(sb.names)
    removed = [n for n in sa.names if n not in in_b]
    added = [n for n in sb.names if n not in in_a]
    for name in _differing(sa, sb, in_a):
        na, nb = sa.node(name), sb.node(name)
        if na == nb:  # message equality: upb compares in C
            continue
        parts = _node_parts(na, nb)
        if parts == ["attr:value"] and na.op == "Const" == nb.op:  # payloads outside the proto compare too
            change = _values_change(name, sa.const(na), sb.const(nb))
            if change is not None:
                report.constants.append(change)
        elif parts:
            report.changed.append(NodeChange(name, nb.op, parts))
    report.renamed = _renames(sa, sb, removed, added, in_a & in_b)
    if report.renamed:  # a consumer whose inputs differ only by those renames has not changed
        moved = {r.a: r.b for r in report.renamed}
        report.changed = [c for c in report.changed if c.changed != ["inputs"] or [
            str(TensorRef(moved.get(r.node, r.node), r.port, r.control)) for r in map(parse_ref, sa.node(c.name).input)
        ] != [str(parse_ref(t)) for t in sb.node(c.name).input]]
    gone = {r.a for r in report.renamed}
    came = {r.b for r in report.renamed}
    report.removed = [n for n in removed if n not in gone]
    report.added = [n for n in added if n not in came]
    fa, fb = sa.functions, sb.functions
    report.functions_removed = sorted(set(fa) - set(fb))
    report.functions_added = sorted(set(fb) - set(fa))
    report.functions_changed = sorted(n for n in set(fa) & set(fb) if fa[n] != fb[n])


def _differing(sa: _GraphSide, sb: _GraphSide, in_a: set[str]) -> list[str]:
    """B's nodes also in A that may differ: all of them, or -- both files scanned -- those whose bytes
    in the files differ (most nodes of two versions of a model are byte-for-byte the same)."""
    ta, tb = sa.table, sb.table
    if ta is None or tb is None:
        return [n for n in sb.names if n in in_a]
    da, db = ta.data, tb.data
    spans_a, spans_b = ta.spans.tolist(), tb.spans.tolist()
    if sa.names == sb.names:  # the usual case, two versions of one graph: node i against node i
        return [name for i, name in enumerate(sb.names)
                if da[spans_a[3 * i + 1]:spans_a[3 * i + 2]] != db[spans_b[3 * i + 1]:spans_b[3 * i + 2]]]
    where_a = sa.positions
    out = []
    for j, name in enumerate(tb.names):
        i = where_a.get(name)
        if i is not None and da[spans_a[3 * i + 1]:spans_a[3 * i + 2]] != db[spans_b[3 * j + 1]:spans_b[3 * j + 2]]:
            out.append(name)
    return out


def _node_parts(na: node_def_pb2.NodeDef, nb: node_def_pb2.NodeDef) -> list[str]:
    parts = []
    if na.op != nb.op:
        parts.append("op")
    if list(na.input) != list(nb.input):
        parts.append("inputs")
    if na.device != nb.device:
        parts.append("device")
    keys = sorted(set(na.attr) | set(nb.attr))
    parts += [f"attr:{k}" for k in keys if k not in na.attr or k not in nb.attr
              or na.attr[k].SerializeToString(deterministic=True) != nb.attr[k].SerializeToString(deterministic=True)]
    return parts


def _renames(sa: _GraphSide, sb: _GraphSide, removed: list[str], added: list[str], common: set[str]) -> list[Renamed]:
    """Pairs (removed from A, added in B) that are one node renamed: the same op, device and attrs (the
    ``_class`` colocation aside: it names nodes, renamed too), and inputs that are the same nodes once
    earlier renames are applied. Matched in passes over A's order
    (producers first in most graphs); among several candidates the one with A's last name component."""
    if not removed or not added:
        return []

    def body(node: node_def_pb2.NodeDef) -> tuple[str, str, tuple[tuple[str, bytes], ...]]:
        return node.op, node.device, tuple(sorted((k, v.SerializeToString(deterministic=True))
                                                  for k, v in node.attr.items() if k != "_class"))

    def refs(inputs: Iterable[str], mapping: Mapping[str, str]) -> tuple[str, ...] | None:
        out = []
        for text in inputs:
            ref = parse_ref(text)
            target = mapping.get(ref.node) or (ref.node if ref.node in common else None)
            if target is None:
                return None
            out.append(str(TensorRef(target, ref.port, ref.control)))
        return tuple(out)

    candidates: dict[tuple[object, ...], list[str]] = {}
    for name in added:  # keyed by B's own input names: A's inputs are mapped into B's names to match
        node = sb.node(name)
        candidates.setdefault((body(node), tuple(str(parse_ref(t)) for t in node.input)), []).append(name)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    pending = list(removed)
    while pending:
        left = []
        for name in pending:
            node = sa.node(name)
            key = refs(node.input, mapping)
            if key is None:  # an input not matched yet: try again in the next pass
                left.append(name)
                continue
            found = [c for c in candidates.get((body(node), key), ()) if c not in taken]
            if len(found) > 1:
                tail = name.rsplit("/", 1)[-1]
                found = [c for c in found if c.rsplit("/", 1)[-1] == tail][:1]
            if found:
                mapping[name] = found[0]
                taken.add(found[0])
        if len(left) == len(pending):
            break
        pending = left
    return [Renamed(a, b, sa.op(a)) for a, b in mapping.items()]


def _diff_signatures(ma: meta_graph_pb2.MetaGraphDef | None, mb: meta_graph_pb2.MetaGraphDef | None,
                     report: DiffReport) -> None:
    sa = dict(ma.signature_def) if ma is not None else {}
    sb = dict(mb.signature_def) if mb is not None else {}
    report.signatures_removed = sorted(set(sa) - set(sb))
    report.signatures_added = sorted(set(sb) - set(sa))
    for key in sorted(set(sa) & set(sb)):
        a, b = sa[key], sb[key]
        if a.method_name != b.method_name:
            report.signatures_changed.append(SignatureChange(key, "method", a.method_name, b.method_name))
        for kind, ia, ib in (("input", a.inputs, b.inputs), ("output", a.outputs, b.outputs)):
            for name in sorted(set(ia) | set(ib)):
                ta = _tensor_info(ia[name]) if name in ia else ""
                tb = _tensor_info(ib[name]) if name in ib else ""
                if ta != tb:
                    report.signatures_changed.append(SignatureChange(key, f"{kind} {name}", ta, tb))


def _tensor_info(info: meta_graph_pb2.TensorInfo) -> str:
    from graphkit.io import dtypes
    from graphkit.io.shapes import format_shape, shape_of

    return f"{info.name} {dtypes.name(info.dtype)}{format_shape(shape_of(info.tensor_shape))}"


def _values_change(name: str, va: object, vb: object) -> TensorChange | None:
    import numpy as np

    from graphkit.io.shapes import format_shape

    xa, xb = np.asarray(va), np.asarray(vb)
    sa, sb = f"{xa.dtype}{format_shape(xa.shape)}", f"{xb.dtype}{format_shape(xb.shape)}"
    if xa.dtype != xb.dtype:
        return TensorChange(name, "dtype", sa, sb)
    if xa.shape != xb.shape:
        return TensorChange(name, "shape", sa, sb)
    if xa.dtype.kind in "fciub":
        if np.array_equal(xa, xb):
            return None
        return TensorChange(name, "value", sa, sb, float(np.abs(xa.astype(np.float64) - xb.astype(np.float64)).max()))
    return None if xa.tolist() == xb.tolist() else TensorChange(name, "value", sa, sb)


def _diff_checkpoints(ca: Checkpoint, cb: Checkpoint, report: DiffReport) -> None:
    names_a = {t.name for t in ca.tensors()}
    names_b = {t.name for t in cb.tensors()}
    report.tensors_removed = sorted(names_a - names_b)
    report.tensors_added = sorted(names_b - names_a)
    for name in sorted(names_a & names_b):
        ia, ib = ca.info(name), cb.info(name)
        if (ia.dtype, ia.shape, ia.partitioned) == (ib.dtype, ib.shape, ib.partitioned) and _same_stored(ca, cb, name):
            continue
        change = _values_change(name, ca.read(name), cb.read(name))
        if change is not None:
            report.tensors.append(change)
    report.tensors.sort(key=lambda t: -(t.max_abs or 0.0))  # the tensors that moved most first


def _same_stored(ca: Checkpoint, cb: Checkpoint, name: str) -> bool:
    """Whether a V2 tensor's stored bytes are the same in both (size and CRC32C; no data read)."""
    from graphkit.io.checkpoint import BundleCheckpoint

    if not (isinstance(ca, BundleCheckpoint) and isinstance(cb, BundleCheckpoint)):
        return False
    pa, pb = ca.stored(name), cb.stored(name)
    return len(pa) == len(pb) and all((a.slice, a.where.length, a.crc32c) == (b.slice, b.where.length, b.crc32c)
                                      for a, b in zip(pa, pb, strict=True))


def _diff_caffe(a: str | os.PathLike[str], b: str | os.PathLike[str], report: DiffReport) -> None:
    """Two Caffe nets: layers added, removed, changed (type, bottoms, tops, params), inputs, and blobs
    whose values differ (from the caffemodels beside the prototxts, when both have one)."""
    report.kind = "caffe"
    na, nb = _caffe_net(a), _caffe_net(b)
    la, lb = {x.name: x for x in na.layers}, {x.name: x for x in nb.layers}
    report.removed = [n for n in la if n not in lb]
    report.added = [n for n in lb if n not in la]
    for name, shape in nb.inputs.items():
        if name in na.inputs and na.inputs[name] != shape:
            report.changed.append(NodeChange(name, "input", ["shape"]))
    for name, layer in lb.items():
        old = la.get(name)
        if old is None:
            continue
        parts = [p for p, x, y in (("type", old.type, layer.type), ("bottoms", old.bottoms, layer.bottoms),
                                   ("tops", old.tops, layer.tops)) if x != y]
        if _layer_params(old.params) != _layer_params(layer.params):
            parts.append("params")
        if parts:
            report.changed.append(NodeChange(name, layer.type, parts))
        if old.blobs is None or layer.blobs is None:
            continue
        for i in range(max(len(old.blobs), len(layer.blobs))):
            if i >= len(old.blobs) or i >= len(layer.blobs):
                report.changed.append(NodeChange(name, layer.type, [f"blob {i}"]))
                continue
            change = _values_change(f"{name}/{i}", old.blobs[i], layer.blobs[i])
            if change is not None:
                report.constants.append(change)
    types = {x.name: x.type for x in nb.layers}
    report.scopes = _scope_summary(report, lambda name: types.get(name, "?"))


def _caffe_net(path: str | os.PathLike[str]) -> CaffeNet:
    from graphkit.io.caffe import find_caffemodel, read_caffe

    text = os.fspath(path)
    if text.endswith(".caffemodel"):
        raise GraphkitError("give the deploy .prototxt (its .caffemodel beside it is read too)", path)
    with about(path):
        return read_caffe(text, find_caffemodel(text))


def _layer_params(params: object) -> bytes:
    """A layer's parameters without its name, bottoms, tops and blobs (compared separately)."""
    from google.protobuf.message import Message

    assert isinstance(params, Message)
    copy = type(params)()
    copy.CopyFrom(params)
    for name in ("name", "bottom", "top", "blobs"):
        copy.ClearField(name)
    return copy.SerializeToString(deterministic=True)


def _scope(name: str) -> str:
    return name.split("/", 1)[0] + "/" if "/" in name else name


def _scope_summary(report: DiffReport, op_b: Callable[[str], str]) -> list[str]:
    """One line per top-level scope with changes: counts, and the ops of what was added when few kinds."""
    scopes: dict[str, Counter[str]] = {}
    added_ops: dict[str, Counter[str]] = {}
    for kind, names in (("added", report.added), ("removed", report.removed),
                        ("renamed", [r.b for r in report.renamed]),
                        ("changed", [c.name for c in report.changed]),
                        ("constants changed", [c.name for c in report.constants])):
        for name in names:
            scopes.setdefault(_scope(name), Counter())[kind] += 1
            if kind == "added":
                added_ops.setdefault(_scope(name), Counter())[op_b(name)] += 1
    lines = []
    for scope, counts in sorted(scopes.items(), key=lambda kv: -sum(kv[1].values())):
        text = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        ops = added_ops.get(scope)
        if ops and len(ops) <= 3:
            text += " (added: " + ", ".join(f"{op} x{n}" for op, n in ops.most_common()) + ")"
        lines.append(f"{scope}: {text}")
    return lines


