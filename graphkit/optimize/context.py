"""What every optimize pass is given, and the helpers they share: a pass is ``fn(graph, ctx) -> (graph,
changes)``, returning a new :class:`~graphkit.io.Graph` and one line per thing it changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from graphkit.io.graph import Graph, GraphIndex, TensorRef, parse_ref
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


Pass = Callable[[Graph, Context], tuple[Graph, list[str]]]


def copy_graph(graph: Graph) -> Graph:
    """A copy to edit: the GraphDef copied, payloads kept outside it shared (they are never written to)."""
    gd = graph_pb2.GraphDef()
    gd.CopyFrom(graph.graph_def)
    return Graph(gd, dict(graph.external))


def replace_node(graph: Graph, index: GraphIndex, node: node_def_pb2.NodeDef) -> None:
    """Put ``node`` in place of the node of its name (in place), its old payload forgotten."""
    graph.external.pop(node.name, None)
    index.nodes[node.name].CopyFrom(node)
    index.refresh([node.name])


def remove_nodes(graph: Graph, names: set[str]) -> None:
    """Drop these nodes (in place) and the control edges to them; data consumers must be gone already."""
    if not names:
        return
    kept = [n for n in graph.graph_def.node if n.name not in names]
    for node in kept:
        inputs = [i for i in node.input if parse_ref(i).node not in names]
        if len(inputs) != len(node.input):
            del node.input[:]
            node.input.extend(inputs)
    del graph.graph_def.node[:]
    graph.graph_def.node.extend(kept)
    for name in names:
        graph.external.pop(name, None)


def resolve(index: GraphIndex, ref: TensorRef) -> TensorRef:
    """Follow Identity-like pass-throughs (port 0) back to the tensor they pass."""
    seen = set()
    while ref.port == 0 and ref.node in index.nodes and ref.node not in seen:
        node = index.nodes[ref.node]
        if node.op not in INFERENCE_IDENTITIES or node.op == "CheckNumerics" or not node.input:
            break
        seen.add(ref.node)
        first = parse_ref(node.input[0])
        if first.control:
            break
        ref = first
    return ref


def const_value(graph: Graph, index: GraphIndex, ref: TensorRef) -> np.ndarray | None:
    """The value of a tensor that is a constant -- a Const, through pass-throughs -- or None."""
    ref = resolve(index, ref)
    node = index.nodes.get(ref.node)
    if node is None or node.op != "Const" or ref.port != 0:
        return None
    return graph.const(node)


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
