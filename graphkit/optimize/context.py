"""What every optimize pass is given, and the helpers they share: a pass is ``fn(graph, ctx) -> (graph,
changes)``, returning a new :class:`~graphkit.io.Graph` and one line per thing it changed."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from graphkit.io.functions import OpDefs
from graphkit.io.graph import Graph, GraphIndex, Payload, TensorRef, graph_header, parse_ref
from graphkit.io.ops import INFERENCE_IDENTITIES
from graphkit.proto import attr_value_pb2, graph_pb2, node_def_pb2

if TYPE_CHECKING:
    import numpy as np

Target = Literal["tf", "tflite", "onnx", "opencv"]
TARGETS: tuple[Target, ...] = ("tf", "tflite", "onnx", "opencv")
# Grappler's constant folding keeps results up to this size (core/grappler/optimizers/constant_folding.h,
# kMaxConstantSize); graphkit does the same unless told otherwise.
MAX_FOLDED_BYTES = 10 << 20


@dataclass
class Context:
    outputs: list[str]  # node names the result must keep, as they are
    inputs: set[str] = field(default_factory=set)  # runtime inputs: never folded
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # --constant NAME=VALUE
    fold_defaults: bool = False
    target: Target = "tf"
    max_folded_bytes: int = MAX_FOLDED_BYTES


class Work:
    """The graph an optimize run's passes edit in place, one index over it for all of them: a
    :class:`~graphkit.io.scan.TableIndex` over a binary file's bytes (nodes parsed only when a pass asks
    for one, unchanged ones written back as bytes), or a :class:`GraphIndex` over a copy of a loaded
    graph (:meth:`of`). ``external``: Const payloads kept outside the nodes (the loader's). Passes read
    ops and inputs from the index's tables, which need no node parsed, and change nodes only through
    :meth:`replace`, :meth:`add`, :meth:`remove` and :meth:`changed`, which keep the index right."""

    def __init__(self, index: GraphIndex, external: dict[str, Payload] | None = None) -> None:
        self.index = index
        self.external: dict[str, Payload] = external if external is not None else {}
        self._payloads = Graph(graph_pb2.GraphDef(), self.external)  # Graph.const reads node + payload only

    @classmethod
    def of(cls, graph: Graph) -> Work:
        """Work on a copy of ``graph`` (which is left as it is)."""
        gd = graph_pb2.GraphDef()
        gd.CopyFrom(graph.graph_def)
        return cls(GraphIndex(gd), dict(graph.external))

    def graph(self) -> Graph:
        """The result as a new Graph, nodes in the index's order (or ``order``'s)."""
        return self.ordered_graph(None)

    def ordered_graph(self, order: list[str] | None) -> Graph:
        index = self.index
        assert index.graph_def is not None
        out = graph_header(index.graph_def)
        out.node.extend(index.nodes[name] for name in (index.inputs if order is None else order))
        return Graph(out, {k: v for k, v in self.external.items() if k in index.inputs})

    def reset(self, graph: Graph) -> None:
        """Work on ``graph`` from now on (a pass that had to edit a whole GraphDef: inlining)."""
        self.index = GraphIndex(graph.graph_def)
        self.external = graph.external
        self._payloads = Graph(graph_pb2.GraphDef(), self.external)

    @property
    def ops(self) -> dict[str, str]:
        return self.index.ops

    def has_ops(self, ops: Collection[str]) -> bool:
        """Whether any node's op is one of ``ops``: a pass's cheap test for having anything to do."""
        return not set(ops).isdisjoint(self.index.ops.values())

    def node(self, name: str) -> node_def_pb2.NodeDef:
        return self.index.nodes[name]

    def const(self, node: node_def_pb2.NodeDef) -> np.ndarray:
        return self._payloads.const(node)

    def const_nbytes(self, node: node_def_pb2.NodeDef) -> int:
        return self._payloads.const_nbytes(node)

    def op_defs(self) -> OpDefs:
        return OpDefs(self.index.graph_def)

    def changed(self, names: Iterable[str]) -> None:
        """These nodes were edited in place."""
        self.index.refresh(names)

    def replace(self, node: node_def_pb2.NodeDef) -> None:
        """Put ``node`` in place of the node of its name, its old payload forgotten."""
        self.external.pop(node.name, None)
        self.index.replace(node)

    def add(self, nodes: list[node_def_pb2.NodeDef]) -> None:
        """New nodes, after the others (copies are taken)."""
        self.index.add(nodes)

    def remove(self, names: Collection[str], *, unread: bool = False) -> None:
        """Drop these nodes and the control edges to them; nothing may still read their data (``unread``:
        see :meth:`GraphIndex.remove`)."""
        if self.external:
            for name in names:
                self.external.pop(name, None)
        self.index.remove(names, unread=unread)

    def forget_removed_payloads(self) -> None:
        """Drop the payloads of nodes no longer in the index (a pass removed them through the index)."""
        for name in [n for n in self.external if n not in self.index.inputs]:
            del self.external[name]

    def keep_only(self, keep: Collection[str]) -> int:
        """Remove every node not in ``keep``; returns how many went."""
        gone = [name for name in self.index.inputs if name not in keep]
        self.remove(set(gone))
        return len(gone)


WorkPass = Callable[[Work, Context], list[str]]
Pass = Callable[[Graph, Context], tuple[Graph, list[str]]]


def alone(work_pass: WorkPass) -> Pass:
    """The pass as a function of a graph returning a new one (the input left as it is): what the library
    offers for each pass; the pipeline runs them all on one :class:`Work`."""
    def run(graph: Graph, ctx: Context) -> tuple[Graph, list[str]]:
        work = Work.of(graph)
        changes = work_pass(work, ctx)
        return (work.graph(), changes) if changes else (graph, [])
    run.__name__ = run.__qualname__ = work_pass.__name__.removesuffix("_in_place")
    run.__doc__ = work_pass.__doc__
    return run


def resolve(index: GraphIndex, ref: TensorRef) -> TensorRef:
    """Follow Identity-like pass-throughs (port 0) back to the tensor they pass."""
    seen = set()
    ops, inputs = index.ops, index.inputs
    while ref.port == 0 and ref.node not in seen:
        op = ops.get(ref.node)
        if op is None or op not in INFERENCE_IDENTITIES or op == "CheckNumerics" or not inputs[ref.node]:
            break
        seen.add(ref.node)
        first = parse_ref(inputs[ref.node][0])
        if first.control:
            break
        ref = first
    return ref


def const_value(work: Work, ref: TensorRef) -> np.ndarray | None:
    """The value of a tensor that is a constant -- a Const, through pass-throughs -- or None."""
    ref = resolve(work.index, ref)
    if work.index.ops.get(ref.node) != "Const" or ref.port != 0:
        return None
    return work.const(work.node(ref.node))


def const_node(name: str, value: np.ndarray) -> node_def_pb2.NodeDef:
    """:func:`graphkit.io.tensors.const_node`, imported on first use: a run with nothing to fold never
    imports numpy (a tenth of a 100,000-node graph's time)."""
    from graphkit.io import tensors

    return tensors.const_node(name, value)


def controls(node: node_def_pb2.NodeDef) -> list[str]:
    return [i for i in node.input if i.startswith("^")]


def data_inputs(node: node_def_pb2.NodeDef) -> list[TensorRef]:
    return [parse_ref(i) for i in node.input if not i.startswith("^")]


def reads_port(index: GraphIndex, name: str, port: int) -> bool:
    """Whether some node reads output ``port`` of ``name``."""
    return any(parse_ref(index.inputs[c][i]).port == port for c, i in index.consumers.get(name, []))


def attr(node: node_def_pb2.NodeDef, key: str) -> attr_value_pb2.AttrValue:
    """A node's attr, or an empty one when it has none -- without adding it (reading ``node.attr[key]`` of
    a protobuf map adds an attr with no value, which TF refuses)."""
    return node.attr[key] if key in node.attr else attr_value_pb2.AttrValue()


def short_value(value: object, limit: int = 8) -> str:
    """A value for a report line: its elements when there are at most ``limit``, else dtype and shape."""
    import numpy as np

    array = np.asarray(value)
    return str(array.tolist()) if array.size <= limit else f"{array.dtype}{list(array.shape)}"
