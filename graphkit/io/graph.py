"""A light index over a GraphDef (never a new IR): tensor references, consumers, topological order.

The GraphDef stays the source of truth. :class:`Graph` pairs it with the Const payloads that were left in
the mmapped input file (see protofile.py); every reader of Const values goes through :meth:`Graph.const`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.ops import MERGE_OPS, NEXT_ITERATION_OPS
from graphkit.proto import function_pb2, graph_pb2, node_def_pb2, tensor_pb2, types_pb2

if TYPE_CHECKING:
    import numpy as np

V = TypeVar("V")
_REF = re.compile(r"^(\^)?([^:^]+)(?::(\d+))?$")


@dataclass(frozen=True)
class TensorRef:
    """One parsed tensor reference: ``name``, ``name:1`` or ``^name`` (control)."""

    node: str
    port: int = 0
    control: bool = False

    def __str__(self) -> str:
        if self.control:
            return "^" + self.node
        return self.node if self.port == 0 else f"{self.node}:{self.port}"

    @property
    def tensor(self) -> str:
        """The explicit tensor name, ``name:0``."""
        return f"{self.node}:{self.port}"


def parse_ref(text: str) -> TensorRef:
    """Parse ``name``, ``name:k`` or ``^name`` (TF's _ParseTensorName: more than one ':' is an error)."""
    match = _REF.match(text.strip())
    if not match:
        raise GraphkitError(f"'{text}' is not a tensor reference (expected NAME, NAME:INDEX or ^NAME)")
    control, node, port = match.groups()
    if control and port is not None:
        raise GraphkitError(f"'{text}': a control reference (^NAME) takes no output index")
    return TensorRef(node, int(port or 0), bool(control))


@dataclass(frozen=True)
class FileSlice:
    """Bytes [offset, offset+length) of a file: tensor bytes copied file-to-file, never held in memory."""

    path: str
    offset: int
    length: int

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        with open(self.path, "rb") as fh:
            data = os.pread(fh.fileno(), self.length, self.offset)
        if len(data) != self.length:
            raise GraphkitError(f"file ends {self.length - len(data)} bytes early (truncated?)", self.path)
        return data


Payload = memoryview | FileSlice


@dataclass
class Graph:
    """A GraphDef plus the Const payloads kept outside it (node name -> tensor_content bytes)."""

    graph_def: graph_pb2.GraphDef
    external: dict[str, Payload] = field(default_factory=dict)

    def const(self, node: node_def_pb2.NodeDef) -> np.ndarray:
        """The value of a Const node."""
        from graphkit.io import tensors

        payload = self.external.get(node.name)
        content = payload.read() if isinstance(payload, FileSlice) else payload
        return tensors.to_numpy(node.attr["value"].tensor, content)

    def const_nbytes(self, node: node_def_pb2.NodeDef) -> int:
        """The bytes a Const stores (a splat -- one value filling a large shape -- stores one value)."""
        if node.name in self.external:
            return len(self.external[node.name])
        return stored_nbytes(node.attr["value"].tensor)

    def is_splat(self, node: node_def_pb2.NodeDef) -> bool:
        """A Const holding one value for a shape of more elements (TF expands it at load time)."""
        if node.name in self.external:
            return False
        return is_splat_tensor(node.attr["value"].tensor)

    def logical_nbytes(self, node: node_def_pb2.NodeDef) -> int:
        """The bytes a Const's value takes once expanded (its shape times its dtype's size)."""
        tensor = node.attr["value"].tensor
        try:
            return _elements(tensor) * dtypes.to_numpy(dtypes.base(tensor.dtype)).itemsize
        except GraphkitError:
            return self.const_nbytes(node)

    def index(self) -> GraphIndex:
        return GraphIndex(self.graph_def)


_VALUE_FIELDS = ("half_val", "float_val", "double_val", "int_val", "int64_val", "bool_val", "dcomplex_val",
                 "scomplex_val", "uint32_val", "uint64_val", "float8_val", "resource_handle_val", "variant_val")


def stored_count(tensor: tensor_pb2.TensorProto) -> int:
    """How many values a TensorProto stores in its typed fields (TF repeats the last to fill the shape)."""
    for name in (*_VALUE_FIELDS, "string_val"):
        count = len(getattr(tensor, name))
        if count:
            return count // 2 if name in ("scomplex_val", "dcomplex_val") else count
    return 0


def _elements(tensor: tensor_pb2.TensorProto) -> int:
    """The element count of a TensorProto's shape; 0 for a shape that cannot be (negative, overflowing):
    the summaries list such constants, the decoder refuses them."""
    from graphkit.io.shapes import element_count

    try:
        return element_count(tuple(int(d.size) for d in tensor.tensor_shape.dim))
    except GraphkitError:
        return 0


def is_splat_tensor(tensor: tensor_pb2.TensorProto) -> bool:
    """One stored value for a shape of more elements (TF repeats it at load time)."""
    return not tensor.tensor_content and stored_count(tensor) == 1 and _elements(tensor) > 1


def stored_nbytes(tensor: tensor_pb2.TensorProto) -> int:
    """The bytes a TensorProto stores: its tensor_content, else its typed values (strings: their lengths)."""
    if tensor.tensor_content:
        return len(tensor.tensor_content)
    if tensor.string_val:
        return sum(len(s) for s in tensor.string_val)
    count = stored_count(tensor)
    try:
        return count * dtypes.to_numpy(dtypes.base(tensor.dtype)).itemsize
    except GraphkitError:
        return 0


def input_node(text: str) -> str:
    """The node an input string reads (``x``, ``x:1``, ``^x`` -> ``x``): the fast path for graph-sized loops
    over inputs already in a GraphDef; user-typed names go through :func:`parse_ref`."""
    if text.startswith("^"):
        return text[1:]
    return text.partition(":")[0]


class GraphIndex:
    """Nodes by name, each node's input strings, ops, colocations and consumers, built once over a GraphDef.

    Passes that edit nodes in place call :meth:`refresh` for the nodes they changed and :meth:`add` for new
    ones, so one index serves a whole pass. The same index serves a FunctionDef's body (whose inputs may
    name its ``arguments`` too); :class:`graphkit.io.scan.TableIndex` is the same index over a binary file's
    bytes, its nodes parsed only when asked for. ``inputs`` has exactly the node names as keys:
    the fast membership test for graph-sized loops."""

    graph_def: graph_pb2.GraphDef | None
    function: function_pb2.FunctionDef | None
    nodes: Mapping[str, node_def_pb2.NodeDef]

    def __init__(self, graph: graph_pb2.GraphDef | function_pb2.FunctionDef) -> None:
        """Index a GraphDef, or a FunctionDef's body (whose inputs may also name its ``arguments``)."""
        nodes: dict[str, node_def_pb2.NodeDef] = {}
        duplicates: list[str] = []
        inputs: dict[str, Sequence[str]] = {}
        for node in self._container(graph):
            name = node.name
            if name in nodes:
                duplicates.append(name)
            nodes[name] = node
            inputs[name] = list(node.input)
        self._init_tables(graph, nodes, inputs, duplicates)

    @staticmethod
    def _container(graph: graph_pb2.GraphDef | function_pb2.FunctionDef) -> Any:
        return graph.node_def if isinstance(graph, function_pb2.FunctionDef) else graph.node

    def _init_tables(self, graph: graph_pb2.GraphDef | function_pb2.FunctionDef | None,
                     nodes: Mapping[str, node_def_pb2.NodeDef], inputs: dict[str, Sequence[str]],
                     duplicates: list[str], ops: dict[str, str] | None = None,
                     colocated: dict[str, list[str]] | None = None, shaped: set[str] | None = None) -> None:
        """The index's whole state, in one place: what it indexes (a GraphDef, a FunctionDef, or None for a
        file's node table), the node mapping, the input strings, and the tables computed on demand."""
        self.function = graph if isinstance(graph, function_pb2.FunctionDef) else None
        self.graph_def = graph if isinstance(graph, graph_pb2.GraphDef) else None
        self.arguments: frozenset[str] = frozenset(
            a.name for a in self.function.signature.input_arg) if self.function is not None else frozenset()
        self.nodes = nodes
        self.inputs = inputs  # each node's input strings
        self.duplicates = duplicates
        self._ops: dict[str, str] | None = ops
        self._colocated: dict[str, list[str]] | None = colocated
        self._shaped: set[str] | None = shaped
        self._reset()

    def _reset(self) -> None:
        self._deps: dict[str, list[str]] | None = None
        self._consumers: dict[str, list[tuple[str, int]]] | None = None
        self._control_consumers: dict[str, list[str]] | None = None

    def refresh(self, names: Iterable[str]) -> None:
        """Re-read these nodes after they were changed in place."""
        for name in names:
            node = self.nodes[name]
            self.inputs[name] = list(node.input)
            if self._ops is not None:
                self._ops[name] = node.op
            if self._colocated is not None:
                targets = colocation_targets(node)
                if targets:
                    self._colocated[name] = targets
                else:
                    self._colocated.pop(name, None)
            if self._shaped is not None:
                if "_output_shapes" in node.attr:
                    self._shaped.add(name)
                else:
                    self._shaped.discard(name)
        self._reset()

    def add(self, new_nodes: list[node_def_pb2.NodeDef]) -> None:
        """Append nodes to the graph (after the existing ones)."""
        graph = self.graph_def if self.graph_def is not None else self.function
        assert graph is not None
        container = self._container(graph)
        container.extend(new_nodes)
        nodes = self.nodes
        assert isinstance(nodes, dict)
        total = len(container)
        added = [container[i] for i in range(total - len(new_nodes), total)]
        for node in added:
            nodes[node.name] = node
        self.refresh(n.name for n in added)

    def rename_node(self, old: str, new: str) -> None:
        """Give node ``old`` the name ``new`` (its consumers are rewired separately)."""
        self._rekey(old, new)
        self.nodes[new].name = new
        self.inputs[new] = self.inputs.pop(old)
        if self._ops is not None:
            self._ops[new] = self._ops.pop(old)
        if self._colocated is not None:
            self._colocated.pop(old, None)
        if self._shaped is not None:
            self._shaped.discard(old)
        self.refresh([new])

    def _rekey(self, old: str, new: str) -> None:
        nodes = self.nodes
        assert isinstance(nodes, dict)
        nodes[new] = nodes.pop(old)

    def restricted(self, keep: Collection[str]) -> GraphIndex:
        """The subgraph of the ``keep`` nodes (original order; library and versions copied) and its index,
        without re-reading every node's inputs. A new GraphDef: this index's graph is left as it is."""
        assert self.graph_def is not None
        out = graph_header(self.graph_def)
        out.node.extend(node for name, node in self.nodes.items() if name in keep)  # graph order (dicts keep it)
        sub = GraphIndex.__new__(GraphIndex)
        sub._restrict_from(self, out, {n.name: n for n in out.node}, [name for name in self.inputs if name not in keep])
        return sub

    def _restrict_from(self, full: GraphIndex, graph: graph_pb2.GraphDef | None,
                       nodes: Mapping[str, node_def_pb2.NodeDef], gone: list[str]) -> None:
        """Fill this index from ``full``'s tables without the ``gone`` nodes (copying a dict and deleting the
        few gone is several times faster than building the many kept)."""
        inputs = without_keys(full.inputs, gone)
        self._init_tables(
            graph, nodes, inputs, [], without_keys(full._ops, gone) if full._ops is not None else None,
            {k: v for k, v in full._colocated.items() if k in inputs} if full._colocated is not None else None,
            {k for k in full._shaped if k in inputs} if full._shaped is not None else None)

    def parsed_nodes(self) -> Iterable[node_def_pb2.NodeDef]:
        """The nodes held as messages: all of them (a :class:`~graphkit.io.scan.TableIndex` holds only those
        a pass asked for)."""
        return self.nodes.values()

    def devices(self) -> dict[str, str]:
        """Each distinct non-empty device string, with the first node that has it."""
        out: dict[str, str] = {}
        for name, node in self.nodes.items():
            if node.device:
                out.setdefault(node.device, name)
        return out

    def unparsed_attr_keys(self) -> tuple[Mapping[str, Sequence[str]], Callable[[str], bool]]:
        """For the nodes not held as messages: attr names by node name (a superset: a name counts only when
        it passes the predicate too, cheaper than building the exact table) and the predicate. None here;
        a TableIndex's come from the file."""
        return {}, lambda name: False

    @property
    def ops(self) -> dict[str, str]:
        """Each node's op."""
        if self._ops is None:
            self._ops = {name: node.op for name, node in self.nodes.items()}
        return self._ops

    @property
    def colocated(self) -> dict[str, list[str]]:
        """node -> the nodes its ``_class`` attr colocates it with (``loc:@X``); only nodes that have some."""
        if self._colocated is None:
            self._colocated = {name: targets for name, node in self.nodes.items()
                               if "_class" in node.attr and (targets := colocation_targets(node))}
        return self._colocated

    @property
    def shaped(self) -> set[str]:
        """Nodes that record ``_output_shapes``."""
        if self._shaped is None:
            self._shaped = {name for name, node in self.nodes.items() if "_output_shapes" in node.attr}
        return self._shaped

    @property
    def deps(self) -> dict[str, list[str]]:
        """Each node's input nodes (data and control), in order."""
        if self._deps is None:
            self._deps = {name: [input_node(t) for t in texts] for name, texts in self.inputs.items()}
        return self._deps

    @property
    def consumers(self) -> dict[str, list[tuple[str, int]]]:
        """node -> [(consumer, input index)] over data edges."""
        if self._consumers is None:
            self._build_consumers()
        assert self._consumers is not None
        return self._consumers

    @property
    def control_consumers(self) -> dict[str, list[str]]:
        """node -> nodes that take it as a control input."""
        if self._control_consumers is None:
            self._build_consumers()
        assert self._control_consumers is not None
        return self._control_consumers

    def _build_consumers(self) -> None:
        consumers: dict[str, list[tuple[str, int]]] = defaultdict(list)
        control: dict[str, list[str]] = defaultdict(list)
        for name, texts in self.inputs.items():
            for i, text in enumerate(texts):
                if text.startswith("^"):
                    control[text[1:]].append(name)
                else:
                    consumers[text.partition(":")[0]].append((name, i))
        self._consumers, self._control_consumers = consumers, control

    def __contains__(self, name: object) -> bool:
        return name in self.inputs

    def node(self, name: str) -> node_def_pb2.NodeDef:
        try:
            return self.nodes[name]
        except KeyError:
            raise GraphkitError(f"no node named '{name}' in the graph{self.suggest(name)}") from None

    def suggest(self, name: str) -> str:
        return closest(name, self.nodes, cutoff=0.6)

    def is_consumed(self, name: str) -> bool:
        return bool(self.consumers.get(name) or self.control_consumers.get(name))


def without_keys(table: dict[str, V], gone: list[str]) -> dict[str, V]:
    """A copy of ``table`` without the ``gone`` keys (in order; fast when few go)."""
    out = table.copy()
    for name in gone:
        out.pop(name, None)
    return out


def colocation_targets(node: node_def_pb2.NodeDef) -> list[str]:
    """Nodes named in a node's ``_class`` colocation attr (``loc:@X``)."""
    if "_class" not in node.attr:
        return []
    return [s.decode()[5:] for s in node.attr["_class"].list.s if s.startswith(b"loc:@")]


def as_index(graph: graph_pb2.GraphDef | GraphIndex) -> GraphIndex:
    """The graph's index (built when given a GraphDef)."""
    return graph if isinstance(graph, GraphIndex) else GraphIndex(graph)




def topological_order(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Node names with every node after its inputs. TF1 loops are cut at NextIteration -> Merge back edges,
    as TF's graph constructor does; any other cycle is an error naming the nodes on it."""
    order, stuck = _sorted(as_index(graph))
    if stuck:
        raise GraphkitError(f"the graph has a cycle that is not a TF1 while loop, through: {', '.join(stuck[:8])}")
    return order


def cycle_nodes(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """The nodes on, or only reachable through, a cycle TF's importer refuses (graph_constructor.cc: "The
    graph couldn't be sorted in topological order"); empty when there is none. Graphs are nearly always
    stored with each node after its inputs, which one pass over the edges proves; the full sort runs only
    when that pass finds a node before one of its inputs."""
    index = as_index(graph)
    inputs = index.inputs
    seen: set[str] = set()
    for name, texts in inputs.items():
        for text in texts:
            if text in seen:  # the common case: a plain name, earlier in the file
                continue
            src = input_node(text)
            # earlier, a source (no cycle runs through it), or dangling (validate reports that)
            if src in seen or not inputs.get(src, ()):
                continue
            ops = index.ops
            if ops[name] in MERGE_OPS and ops[src] in NEXT_ITERATION_OPS:
                continue
            return _sorted(index)[1]
        seen.add(name)
    return []


def _sorted(index: GraphIndex) -> tuple[list[str], list[str]]:
    """Kahn's sort: the order, and the nodes it could not place (a cycle, and what only it feeds)."""
    pending: dict[str, int] = {}
    users: dict[str, list[str]] = defaultdict(list)
    nodes, ops = index.nodes, index.ops
    for name, deps_of in index.deps.items():
        merge = ops[name] in MERGE_OPS
        deps = 0
        for src in deps_of:
            if src not in nodes:
                continue
            if merge and ops[src] in NEXT_ITERATION_OPS:
                continue
            deps += 1
            users[src].append(name)
        pending[name] = deps
    ready = deque(name for name, deps in pending.items() if deps == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for user in users[name]:
            pending[user] -= 1
            if pending[user] == 0:
                ready.append(user)
    return order, [n for n, d in pending.items() if d > 0] if len(order) < len(pending) else []


_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")  # TF's graph_constructor.cc IsValidNodeName
_GRAPH_INPUT = re.compile(r"^\^?[A-Za-z0-9.][A-Za-z0-9_.\-/>]*(:(0|[1-9][0-9]*))?$")


def validate(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Problems that stop TF from importing a graph (``core/common_runtime/graph_constructor.cc``): duplicate
    or invalid names, malformed or dangling inputs, an output index past the producer's outputs, bad
    colocations, a cycle that is not a TF1 loop, a type attr holding no DataType (``attr_value_util.cc``:
    "AttrValue has invalid DataType enum"). A FunctionDef body is checked for what applies to it."""
    index = as_index(graph)
    names = index.inputs  # its keys are the node names
    problems = [f"duplicate node name '{n}'" for n in index.duplicates]
    arguments = index.arguments
    in_function = index.function is not None
    if not in_function:
        problems += [f"'{name}' is not a valid node name" for name in names if not _NODE_NAME.match(name)]
    ported: list[tuple[str, str, int]] = []  # (reader, producer, port) for port > 0: checked against op defs
    for name, texts in index.inputs.items():
        for text in texts:
            if text not in names and input_node(text) not in names and input_node(text) not in arguments:
                problems.append(f"node '{name}' reads '{text}', which is not in the graph")
            elif not in_function and text not in names:
                if not _GRAPH_INPUT.match(text):
                    problems.append(f"node '{name}' has a malformed input '{text}' (expected NAME, NAME:INDEX or "
                                    "^NAME)")
                elif not text.startswith("^"):
                    ported.append((name, input_node(text), int(text.rpartition(":")[2])))
    problems += [f"node '{name}' has no op" for name, op in index.ops.items() if not op]
    for name, targets in index.colocated.items():
        problems += [f"node '{name}' is colocated with '{t}', which is not in the graph" for t in targets
                     if t not in names and t not in arguments]
    problems += _port_problems(index, ported)
    stuck = cycle_nodes(index)
    if stuck:
        problems.append(f"a cycle that is not a TF1 while loop runs through {', '.join(stuck[:8])}")
    problems += _node_problems(index)
    return problems


# DeviceSpec's device types without a plugin (python/framework/device_spec.py _VALID_DEVICE_TYPES); a
# pluggable device is written /device:TYPE:N, which takes any type
_DEVICE_TYPES = frozenset({"CPU", "GPU", "TPU", "CUSTOM", "EPU"})


def device_problem(spec: str) -> str | None:
    """Why ``tf.import_graph_def`` would refuse a node's device string, or None: the rules of
    ``DeviceSpecV2._string_to_components`` (``/job:J/replica:R/task:T/device:TYPE:N``, the short ``/cpu:0``,
    ``*`` indexes, one device type)."""
    device_type = None
    for part in spec.split("/"):
        y = part.split(":")
        if len(y) == 2 and y[0] == "job":
            continue
        if len(y) == 2 and y[0] in ("replica", "task"):
            if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", y[1]):  # DeviceSpec makes them ints
                return f"device '{spec}' has the {y[0]} '{y[1]}', which is no number"
            continue
        if len(y) in (1, 2) and y[0].upper() in _DEVICE_TYPES or len(y) == 3 and y[0] == "device":
            if device_type is not None:
                return f"device '{spec}' names more than one device type"
            device_type = y[1] if len(y) == 3 else y[0]
            index = y[-1] if len(y) > 1 else "*"
            if index != "*" and not re.fullmatch(r"\s*[+-]?[0-9]+\s*", index):
                return f"device '{spec}' has the index '{index}', which is no number"
        elif y[0] != "":
            return f"device '{spec}' has a part '{y[0]}' TF does not know"
    return None


def library_problems(graph_def: graph_pb2.GraphDef) -> list[str]:
    """What :func:`validate` finds in each function body of the library, and body references
    ``node:out_arg:i`` to an output the node's op does not have (TF: "input ... is not found")."""
    from graphkit.io.functions import OpDefs

    op_defs = OpDefs(graph_def)
    problems = []
    for fdef in graph_def.library.function:
        where = f"function '{fdef.signature.name}'"
        index = GraphIndex(fdef)
        problems += [f"{where}: {p}" for p in validate(index)]
        for name, texts in index.inputs.items():
            for text in texts:
                parts = text.split(":")
                node = index.nodes.get(parts[0]) if len(parts) == 3 else None
                if node is None or op_defs.get(node.op) is None:
                    continue  # an argument, a plain reference, or an op only a custom library defines
                try:
                    op_defs.flat_port(node, parts[1], int(parts[2]))
                except (GraphkitError, ValueError):
                    problems.append(f"{where}: node '{name}' reads '{text}', which '{parts[0]}' ({node.op}) "
                                    "does not output")
    return problems


def tensor_problem(tensor: tensor_pb2.TensorProto) -> str | None:
    """What makes a TensorProto no tensor TF could build (``Tensor::FromProto``, and the Const shape
    function at import): a negative or unknown dimension, more elements than int64 counts, tensor_content
    whose length is not the shape's; None when it is sound."""
    if tensor.tensor_shape.unknown_rank:
        return "its shape has an unknown rank"
    dims = [d.size for d in tensor.tensor_shape.dim]
    if any(d < 0 for d in dims):
        return f"its shape [{','.join(map(str, dims))}] has a negative dimension"
    count = 1
    for d in dims:
        count *= d
    if count >= 1 << 63:
        return f"its shape [{','.join(map(str, dims))}] has more elements than int64 counts"
    size = dtypes.ITEMSIZE.get(dtypes.base(tensor.dtype))
    content = len(tensor.tensor_content)
    if content and size is not None and content != count * size:
        return f"its tensor_content holds {content} bytes where shape [{','.join(map(str, dims))}] needs {count * size}"
    return None


def _node_problems(index: GraphIndex) -> list[str]:
    """Per node: attrs its op requires that are missing (TF: "NodeDef missing attr"), type attrs holding no
    DataType (``attr_value_util.cc``: "AttrValue has invalid DataType enum"), tensors no TF could build. A
    scanned file's unparsed nodes had their types and tensors checked in their wire form
    (:func:`graphkit.io.scan.scan_graph_file`); their attr names come from the table."""
    from graphkit.io.functions import OpDefs

    op_defs = OpDefs(index.graph_def)
    required: dict[str, frozenset[str] | None] = {}

    def missing(op: str, keys: Collection[str]) -> str | None:
        if op not in required:
            op_def = op_defs.get(op)
            required[op] = None if op_def is None else frozenset(
                a.name for a in op_def.attr if not a.HasField("default_value"))
        need = required[op]
        if not need:
            return None
        absent = [a for a in need if a not in keys]
        return min(absent) if absent else None

    from graphkit.io.scan import available, wire_sound

    problems = []
    # types and tensors checked in C, when it is built (else node by node, below)
    sound = index.graph_def is not None and wire_sound(index.graph_def)
    verdicts: dict[tuple[str, Sequence[str]], str | None] = {}  # most nodes share their op's attr names
    for node in index.parsed_nodes():
        attrs = node.attr
        names = tuple(attrs)
        try:
            lacking = verdicts[node.op, names]
        except KeyError:
            lacking = verdicts[node.op, names] = missing(node.op, names)
        if lacking:
            problems.append(f"node '{node.name}' ({node.op}) lacks attr '{lacking}', which its op requires")
        if sound:
            continue
        if node.op == "Const" and "dtype" in attrs and "value" in attrs and (
                attrs["value"].tensor.dtype != attrs["dtype"].type):
            problems.append(f"node '{node.name}' (Const) has dtype {attrs['dtype'].type} but a value of dtype "
                            f"{attrs['value'].tensor.dtype}")
        for key, value in attrs.items():
            kind = value.WhichOneof("value")
            if kind is None:
                if not key.startswith("_"):  # TF: "AttrValue missing value with expected type ..."
                    problems.append(f"node '{node.name}' has attr '{key}' with no value")
                continue
            if kind == "shape" or kind == "list" and value.list.shape:
                for shape in [value.shape] if kind == "shape" else value.list.shape:
                    if any(d.size < -1 for d in shape.dim):
                        problems.append(f"node '{node.name}' has attr '{key}' holding a shape with a dimension "
                                        f"below -1 ([{','.join(str(d.size) for d in shape.dim)}])")
            if kind == "type":
                if value.type not in _DATA_TYPES:
                    problems.append(f"node '{node.name}' has attr '{key}' = {value.type}, which is no DataType")
            elif kind == "tensor" or kind == "list":
                bad = [t for t in value.list.type if t not in _DATA_TYPES] if kind == "list" else []
                if bad:
                    problems.append(f"node '{node.name}' has attr '{key}' = {bad[0]}, which is no DataType")
                for tensor in [value.tensor] if kind == "tensor" else value.list.tensor:
                    why = tensor_problem(tensor)
                    if why:
                        problems.append(f"node '{node.name}' has attr '{key}' holding a tensor TF cannot build: "
                                        f"{why}")
    if available() and not sound and not problems and index.graph_def is not None:
        # what protobuf parsed and hides (an attr entry without its value) but TF would read: the check saw it
        from graphkit.io.scan import node_wire_problem

        for node in index.parsed_nodes():
            why = node_wire_problem(node)
            if why:
                problems.append(f"node '{node.name}': {why}")
    for device, name in index.devices().items():
        why = device_problem(device)
        if why:
            problems.append(f"node '{name}': {why}")
    attr_keys, unparsed = index.unparsed_attr_keys()
    ops = index.ops
    for name, keys in attr_keys.items():
        op = ops.get(name)
        if op is None:
            continue  # no longer in the graph
        try:
            lacking = verdicts[op, keys]
        except KeyError:
            lacking = verdicts[op, keys] = missing(op, keys)
        if lacking and unparsed(name):
            problems.append(f"node '{name}' ({op}) lacks attr '{lacking}', which its op requires")
    return problems


def unknown_ops(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Ops neither TensorFlow (the op table graphkit ships) nor the graph's library defines: TF refuses
    the graph unless a custom-op library registers them, which graphkit cannot know -- so callers note them
    rather than refuse. Each as "Op (node)"."""
    from graphkit.io.functions import OpDefs

    index = as_index(graph)
    op_defs = OpDefs(index.graph_def)
    unknown = {op for op in set(index.ops.values()) if op and op_defs.get(op) is None}
    first: dict[str, str] = {}
    if unknown:
        for name, op in index.ops.items():
            if op in unknown and op not in first:
                first[op] = name
    return [f"{op} (node '{name}')" for op, name in first.items()]


def unknown_ops_note(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """The note commands add to their report for :func:`unknown_ops` (none when every op is known)."""
    from graphkit.io.functions import SHIPPED_TF

    unknown = unknown_ops(graph)
    if not unknown:
        return []
    return [f"TensorFlow {SHIPPED_TF} defines no op {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; "
            "TF refuses the graph unless a custom-op library registers it (a damaged file shows this too)"]


def check_importable(graph: graph_pb2.GraphDef | GraphIndex, path: str | os.PathLike[str],
                     what: str = "the result") -> None:
    """Raise, naming ``path``, when :func:`validate` finds problems: every command that writes a graph calls
    this before writing, so nothing TF's importer refuses leaves graphkit with exit 0. ``path``: the
    output, or the input when the problems can only have come from there."""
    problems = validate(graph)
    graph_def = as_index(graph).graph_def
    if graph_def is not None and graph_def.library.function:
        problems += library_problems(graph_def)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise GraphkitError(f"{what} would not import in TensorFlow: " + "; ".join(problems[:5]) + more, path)


_DATA_TYPES = frozenset(types_pb2.DataType.values())


def _port_problems(index: GraphIndex, ported: list[tuple[str, str, int]]) -> list[str]:
    """Inputs ``x:k`` past the outputs ``x``'s op has (its OpDef, with the node's attrs)."""
    if not ported:
        return []
    from graphkit.io.functions import OpDefs

    op_defs = OpDefs(index.graph_def)
    problems = []
    for reader, producer, port in ported:
        node = index.nodes[producer]
        try:
            count = sum(size for _, size in op_defs.output_args(node))
        except GraphkitError:
            continue  # a custom op, or attrs TF would fill in: TF itself decides
        if port >= count:
            problems.append(f"node '{reader}' reads '{producer}:{port}', but '{producer}' ({node.op}) has "
                            f"{count} output{'s' if count != 1 else ''}")
    return problems


def downstream(index: GraphIndex, starts: Iterable[str]) -> set[str]:
    """Nodes reachable from ``starts`` over data and control edges (``starts`` included): what they feed."""
    seen = set(starts)
    stack = list(seen)
    while stack:
        name = stack.pop()
        for user in [u for u, _ in index.consumers.get(name, [])] + index.control_consumers.get(name, []):
            if user not in seen:
                seen.add(user)
                stack.append(user)
    return seen


def reachable(index: GraphIndex, outputs: Iterable[str], colocations: bool = True) -> set[str]:
    """The nodes ``outputs`` need through data inputs, control inputs and (unless ``colocations`` is
    false) ``_class`` colocations: TF's extract_sub_graph. An unknown output is an error naming the closest."""
    stack: list[str] = []
    for name in outputs:
        index.node(name)
        stack.append(name)
    keep = set(stack)
    inputs = index.inputs  # its keys are the node names
    colocated = index.colocated if colocations else {}
    while stack:
        name = stack.pop()
        for text in inputs[name]:
            dep = text if text in inputs else input_node(text)
            if dep not in keep and dep in inputs:
                keep.add(dep)
                stack.append(dep)
        for dep in colocated.get(name, ()):
            if dep not in keep and dep in inputs:
                keep.add(dep)
                stack.append(dep)
    return keep


def extract_subgraph(graph_def: graph_pb2.GraphDef, outputs: Iterable[str], colocations: bool = True,
                     index: GraphIndex | None = None) -> graph_pb2.GraphDef:
    """TF's extract_sub_graph: keep what ``outputs`` (node names) need through data inputs, control
    inputs and ``_class`` colocations; original node order; library and versions copied.

    With ``colocations=False`` colocation targets do not keep nodes alive (a cut graph's upstream goes away);
    call :func:`drop_dangling_colocations` on the result."""
    index = index if index is not None and index.graph_def is graph_def else GraphIndex(graph_def)
    result = index.restricted(reachable(index, outputs, colocations)).graph_def
    assert result is not None
    return result


def consumers_of(index: GraphIndex, ref: TensorRef) -> list[str]:
    """Nodes that read tensor ``ref`` (or, for ``^name``, take it as a control input)."""
    if ref.control:
        return list(index.control_consumers.get(ref.node, []))
    users = []
    for user, i in index.consumers.get(ref.node, []):
        if parse_ref(index.inputs[user][i]).port == ref.port:
            users.append(user)
    return users


def rewire(graph: graph_pb2.GraphDef | GraphIndex, mapping: dict[TensorRef, TensorRef]) -> set[str]:
    """Rewrite every input equal to a key (``x`` = ``x:0``; ``^x`` control) to its value, in place (an index
    is refreshed); duplicate control inputs are dropped. Returns the names of the nodes changed."""
    index = as_index(graph)
    changed: set[str] = set()
    readers: dict[str, None] = {}  # the nodes with an input from a key's node (a dict: no repeats)
    for key in {k.node for k in mapping}:
        readers.update((user, None) for user, _ in index.consumers.get(key, []))
        readers.update((user, None) for user in index.control_consumers.get(key, []))
    for name in readers:
        new_inputs = []
        seen_control: set[str] = set()
        touched = False
        for text in index.inputs[name]:
            ref = parse_ref(text)
            target = mapping.get(ref)
            if target is not None:
                ref, touched = target, True
            if ref.control:
                if ref.node in seen_control:
                    touched = True
                    continue
                seen_control.add(ref.node)
            new_inputs.append(str(ref))
        if touched:
            node = index.nodes[name]
            del node.input[:]
            node.input.extend(data_first(new_inputs))
            changed.add(name)
    index.refresh(changed)
    return changed


def data_first(inputs: list[str]) -> list[str]:
    """TF requires control inputs after data inputs."""
    return [i for i in inputs if not i.startswith("^")] + [i for i in inputs if i.startswith("^")]


def valid_node_name(text: str) -> str:
    """``text`` made a name TF accepts (:data:`_NODE_NAME`), for names from other frameworks: characters TF
    does not allow become ``_``, empty scope parts go, and a name cannot start with ``_``, ``-``, ``>``
    or ``/`` (TF keeps a leading ``_`` for its own nodes). Valid names come back unchanged."""
    if _NODE_NAME.match(text):
        return text
    parts = [re.sub(r"[^A-Za-z0-9_.\-/>]", "_", part) for part in text.split("/") if part]
    return "/".join(parts).lstrip("_->") or "node"


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``... -- the first not in ``taken`` (which it is added to)."""
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def drop_dangling_colocations(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Remove ``_class`` ``loc:@X`` entries whose X is not in the graph (nor an argument of the function
    indexed) in place; an index is refreshed; returns the nodes changed. Function bodies often carry
    tracing-time names that exist nowhere (``loc:@embedding_lookup/91``)."""
    index = as_index(graph)
    names, arguments = index.nodes, index.arguments
    changed = []
    for name, targets in list(index.colocated.items()):
        if all(t in names or t in arguments for t in targets):
            continue
        node = index.nodes[name]
        entries = list(node.attr["_class"].list.s)
        kept = [e for e in entries if not e.startswith(b"loc:@") or e[5:].decode() in names
                or e[5:].decode() in arguments]
        changed.append(name)
        if kept:
            del node.attr["_class"].list.s[:]
            node.attr["_class"].list.s.extend(kept)
        else:
            del node.attr["_class"]
    index.refresh(changed)
    return changed


def _function_refs(nodes: Iterable[node_def_pb2.NodeDef], names: set[str]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if node.op in names:
            found.add(node.op)
        for attr in node.attr.values():
            if attr.func.name in names:
                found.add(attr.func.name)
            found.update(f.name for f in attr.list.func if f.name in names)
    return found


def drop_unused_library(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Keep only the library functions the graph's nodes reach (directly or through other functions), in
    place; returns the names dropped."""
    if not graph_def.library.function:
        return []
    by_name = {f.signature.name: f for f in graph_def.library.function}
    names = set(by_name)
    used = _function_refs(graph_def.node, names)
    queue = list(used)
    while queue:
        func = by_name[queue.pop()]
        for ref in _function_refs(func.node_def, names) - used:
            used.add(ref)
            queue.append(ref)
    dropped = sorted(names - used)
    if not used:
        graph_def.ClearField("library")
    elif dropped:
        kept = [f for f in graph_def.library.function if f.signature.name in used]
        grads = [g for g in graph_def.library.gradient if g.function_name in used]
        graph_def.library.ClearField("function")
        graph_def.library.function.extend(kept)
        graph_def.library.ClearField("gradient")
        graph_def.library.gradient.extend(grads)
    return dropped


def graph_header(graph_def: graph_pb2.GraphDef) -> graph_pb2.GraphDef:
    """Everything of a GraphDef but its nodes (versions, library, debug info), without copying the nodes."""
    out = graph_pb2.GraphDef()
    for field_desc, value in graph_def.ListFields():
        if field_desc.name == "node":
            continue
        if field_desc.message_type:
            getattr(out, field_desc.name).CopyFrom(value)
        else:
            setattr(out, field_desc.name, value)
    return out


def closest(name: str, names: Iterable[str], n: int = 3, cutoff: float = 0.5) -> str:
    """`` (closest: a, b)`` for error messages, or ``""`` when nothing is close."""
    import difflib

    near = difflib.get_close_matches(name, list(names), n=n, cutoff=cutoff)
    return f" (closest: {', '.join(near)})" if near else ""
