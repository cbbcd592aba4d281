"""What changed between two models, TF-free: nodes added and removed, nodes whose op, inputs, device or
attrs changed, constants whose values changed, and checkpoint tensors that changed (shape, dtype, values:
the max absolute difference). A summary by top-level name scope comes first ("train/: 240 added, all
Assign/Add"): the usual question is which part of a graph grew, as when ops are made inside a training loop
(``graph.finalize()`` stops that).

Equal values are told by their stored bytes (CRC32C for checkpoint tensors) before anything is decoded, so
two multi-GB checkpoints that mostly agree are compared without reading most of their data.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from graphkit.errors import GraphkitError, about
from graphkit.io.checkpoint import Checkpoint
from graphkit.io.graph import Graph
from graphkit.io.loader import Model, load
from graphkit.proto import node_def_pb2


@dataclass
class NodeChange:
    """A node in both graphs that differs: which of its parts (op, inputs, device, attr names)."""

    name: str
    op: str  # in B
    changed: list[str]  # "op", "inputs", "device", "attr:<name>"


@dataclass
class TensorChange:
    """A constant (node name) or checkpoint tensor (key) whose value differs."""

    name: str
    what: str  # "value", "shape", "dtype"
    a: str  # dtype and shape in A, e.g. "float32[3,4]"
    b: str
    max_abs: float | None = None  # for "value" of numeric tensors


@dataclass
class DiffReport:
    """What ``diff`` found; ``equal`` when nothing differs."""

    a: str
    b: str
    equal: bool = True
    added: list[str] = field(default_factory=list)  # node names in B only
    removed: list[str] = field(default_factory=list)  # node names in A only
    changed: list[NodeChange] = field(default_factory=list)
    constants: list[TensorChange] = field(default_factory=list)
    tensors_added: list[str] = field(default_factory=list)  # checkpoint keys in B only
    tensors_removed: list[str] = field(default_factory=list)
    tensors: list[TensorChange] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)  # the summary lines, by top-level scope


def diff(a: str | os.PathLike[str], b: str | os.PathLike[str], *, tags: list[str] | None = None) -> DiffReport:
    """Compare model ``a`` with model ``b`` (any format graphkit loads): their graphs when both have one,
    their checkpoints when both have one (a checkpoint with its .meta against a checkpoint alone compares
    the tensors)."""
    with about(f"{a} vs {b}"):
        ma, mb = _load(a, tags), _load(b, tags)
        report = DiffReport(os.fspath(a), os.fspath(b))
        graphs = ma.graph is not None and mb.graph is not None
        checkpoints = ma.checkpoint is not None and mb.checkpoint is not None
        if not (graphs or checkpoints):
            raise GraphkitError("one side is a graph and the other a checkpoint alone; compare like with like")
        if graphs:
            assert ma.graph is not None and mb.graph is not None
            _diff_graphs(ma.graph, mb.graph, report)
        if checkpoints:
            assert ma.checkpoint is not None and mb.checkpoint is not None
            _diff_checkpoints(ma.checkpoint, mb.checkpoint, report)
        report.equal = not (report.added or report.removed or report.changed or report.constants
                            or report.tensors_added or report.tensors_removed or report.tensors)
        report.scopes = _scope_summary(report, mb.graph)
        return report


def _load(path: str | os.PathLike[str], tags: list[str] | None) -> Model:
    model = load(path, tags=tags)
    if model.graph is None and model.checkpoint is None:
        raise GraphkitError("nothing to compare here", path)
    return model


def _diff_graphs(ga: Graph, gb: Graph, report: DiffReport) -> None:
    a = {n.name: n for n in ga.graph_def.node}
    b = {n.name: n for n in gb.graph_def.node}
    report.removed = [n for n in a if n not in b]
    report.added = [n for n in b if n not in a]
    for name, nb in b.items():
        na = a.get(name)
        if na is None or na == nb:  # message equality: upb compares in C, the common case is equal
            continue
        parts = _node_parts(na, nb)
        if parts == ["attr:value"] and na.op == "Const" == nb.op:  # payloads outside the proto compare too
            change = _values_change(name, ga.const(na), gb.const(nb))
            if change is not None:
                report.constants.append(change)
        elif parts:
            report.changed.append(NodeChange(name, nb.op, parts))


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


def _scope(name: str) -> str:
    return name.split("/", 1)[0] + "/" if "/" in name else name


def _scope_summary(report: DiffReport, gb: Graph | None) -> list[str]:
    """One line per top-level scope with changes: counts, and the ops of what was added when few kinds."""
    ops_b = {n.name: n.op for n in gb.graph_def.node} if gb is not None else {}
    scopes: dict[str, Counter[str]] = {}
    added_ops: dict[str, Counter[str]] = {}
    for kind, names in (("added", report.added), ("removed", report.removed),
                        ("changed", [c.name for c in report.changed]),
                        ("constants changed", [c.name for c in report.constants])):
        for name in names:
            scopes.setdefault(_scope(name), Counter())[kind] += 1
            if kind == "added":
                added_ops.setdefault(_scope(name), Counter())[ops_b.get(name, "?")] += 1
    lines = []
    for scope, counts in sorted(scopes.items(), key=lambda kv: -sum(kv[1].values())):
        text = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        ops = added_ops.get(scope)
        if ops and len(ops) <= 3:
            text += " (added: " + ", ".join(f"{op} x{n}" for op, n in ops.most_common()) + ")"
        lines.append(f"{scope}: {text}")
    return lines
