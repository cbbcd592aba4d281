"""A light index over a GraphDef (never a new IR): tensor references, consumers, topological order.

The GraphDef stays the source of truth. :class:`Graph` pairs it with the Const payloads that were left in
the mmapped input file (see protofile.py); every reader of Const values goes through :meth:`Graph.const`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import dtypes, tensors
from graphkit.proto import graph_pb2, node_def_pb2

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
        payload = self.external.get(node.name)
        content = payload.read() if isinstance(payload, FileSlice) else payload
        return tensors.to_numpy(node.attr["value"].tensor, content)

    def const_nbytes(self, node: node_def_pb2.NodeDef) -> int:
        if node.name in self.external:
            return len(self.external[node.name])
        tensor = node.attr["value"].tensor
        if tensor.tensor_content:
            return len(tensor.tensor_content)
        shape = tensors.shape_of(tensor.tensor_shape) or ()
        code = dtypes.base(tensor.dtype)
        if code == dtypes.DT_STRING:
            return sum(len(s) for s in tensor.string_val)
        try:
            return int(np.prod(shape, dtype=np.int64)) * dtypes.to_numpy(code).itemsize
        except GraphkitError:
            return 0

    def index(self) -> GraphIndex:
        return GraphIndex(self.graph_def)


def input_node(text: str) -> str:
    """The node an input string reads (``x``, ``x:1``, ``^x`` -> ``x``): the fast path for graph-sized loops
    over inputs already in a GraphDef; user-typed names go through :func:`parse_ref`."""
    if text.startswith("^"):
        return text[1:]
    return text.partition(":")[0]


class GraphIndex:
    """Nodes by name, each node's input nodes, and the consumers of each node, built once over a GraphDef."""

    def __init__(self, graph_def: graph_pb2.GraphDef) -> None:
        self.graph_def = graph_def
        self.nodes: dict[str, node_def_pb2.NodeDef] = {}
        self.duplicates: list[str] = []
        self.inputs: dict[str, list[str]] = {}  # each node's input strings
        nodes, inputs = self.nodes, self.inputs
        for node in graph_def.node:
            name = node.name
            if name in nodes:
                self.duplicates.append(name)
            nodes[name] = node
            inputs[name] = list(node.input)
        self._reset()

    def _reset(self) -> None:
        self._deps: dict[str, list[str]] | None = None
        self._consumers: dict[str, list[tuple[str, int]]] | None = None
        self._control_consumers: dict[str, list[str]] | None = None

    def refresh(self, names: Iterable[str]) -> None:
        """Re-read these nodes (changed in place, or appended to the GraphDef) without a full rebuild."""
        wanted = set(names) - set(self.nodes)
        if wanted:
            for node in self.graph_def.node:
                if node.name in wanted:
                    self.nodes[node.name] = node
        for name in names:
            if name in self.nodes:
                self.inputs[name] = list(self.nodes[name].input)
        self._reset()

    def restricted(self, graph_def: graph_pb2.GraphDef) -> GraphIndex:
        """The index of ``graph_def``, a subset of this index's nodes with unchanged inputs (the result of
        :func:`extract_subgraph`), without re-reading every node's inputs."""
        sub = GraphIndex.__new__(GraphIndex)
        sub.graph_def = graph_def
        sub.nodes = {n.name: n for n in graph_def.node}
        sub.duplicates = []
        sub.inputs = {name: self.inputs[name] for name in sub.nodes}
        sub._reset()
        return sub

    @property
    def deps(self) -> dict[str, list[str]]:
        """Each node's input nodes (data and control), in order."""
        if self._deps is None:
            self._deps = {name: [t[1:] if t.startswith("^") else t.partition(":")[0] for t in texts]
                          for name, texts in self.inputs.items()}
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
        return name in self.nodes

    def node(self, name: str) -> node_def_pb2.NodeDef:
        try:
            return self.nodes[name]
        except KeyError:
            raise GraphkitError(f"no node named '{name}' in the graph{self.suggest(name)}") from None

    def suggest(self, name: str) -> str:
        return closest(name, self.nodes, cutoff=0.6)

    def is_consumed(self, name: str) -> bool:
        return bool(self.consumers.get(name) or self.control_consumers.get(name))

    def colocations(self, node: node_def_pb2.NodeDef) -> list[str]:
        """Nodes named in the ``_class`` colocation attr (``loc:@X``)."""
        if "_class" not in node.attr:
            return []
        return [s.decode()[5:] for s in node.attr["_class"].list.s if s.startswith(b"loc:@")]


def topological_order(graph_def: graph_pb2.GraphDef, index: GraphIndex | None = None) -> list[str]:
    """Node names with every node after its inputs. TF1 loops are cut at NextIteration -> Merge back edges,
    as TF's graph constructor does; any other cycle is an error naming the nodes on it."""
    index = index if index is not None and index.graph_def is graph_def else GraphIndex(graph_def)
    pending: dict[str, int] = {}
    users: dict[str, list[str]] = defaultdict(list)
    nodes = index.nodes
    for name, deps_of in index.deps.items():
        merge = nodes[name].op in ("Merge", "RefMerge")
        deps = 0
        for src in deps_of:
            if src not in nodes:
                continue
            if merge and nodes[src].op in ("NextIteration", "RefNextIteration"):
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
    if len(order) < len(pending):
        stuck = [n for n, d in pending.items() if d > 0]
        raise GraphkitError(f"the graph has a cycle that is not a TF1 while loop, through: {', '.join(stuck[:8])}")
    return order


def validate(graph_def: graph_pb2.GraphDef, index: GraphIndex | None = None) -> list[str]:
    """Problems that stop TF from importing a graph: duplicate names, dangling inputs, bad colocations."""
    index = index if index is not None and index.graph_def is graph_def else GraphIndex(graph_def)
    names = index.nodes
    problems = [f"duplicate node name '{n}'" for n in index.duplicates]
    for name, texts in index.inputs.items():
        for text in texts:
            if (text[1:] if text.startswith("^") else text.partition(":")[0]) not in names:
                problems.append(f"node '{name}' reads '{text}', which is not in the graph")
    for node in graph_def.node:
        if not node.op:
            problems.append(f"node '{node.name}' has no op")
        if "_class" in node.attr:
            for entry in node.attr["_class"].list.s:
                if entry.startswith(b"loc:@") and entry[5:].decode() not in names:
                    problems.append(f"node '{node.name}' is colocated with '{entry[5:].decode()}', "
                                    "which is not in the graph")
    return problems


def node_names(graph_def: graph_pb2.GraphDef) -> Iterable[str]:
    return (n.name for n in graph_def.node)


def extract_subgraph(graph_def: graph_pb2.GraphDef, outputs: Iterable[str], colocations: bool = True,
                     index: GraphIndex | None = None) -> graph_pb2.GraphDef:
    """TF's extract_sub_graph: keep what ``outputs`` (node names) need through data inputs, control
    inputs and ``_class`` colocations; original node order; library and versions copied.

    With ``colocations=False`` colocation targets do not keep nodes alive (a cut graph's upstream goes away);
    call :func:`drop_dangling_colocations` on the result."""
    index = index if index is not None and index.graph_def is graph_def else GraphIndex(graph_def)
    queue: deque[str] = deque()
    for name in outputs:
        index.node(name)  # a clear error naming the closest node
        queue.append(name)
    keep = set(queue)
    nodes, all_deps = index.nodes, index.deps
    while queue:
        name = queue.popleft()
        deps = all_deps[name]
        if colocations and "_class" in nodes[name].attr:
            deps = deps + index.colocations(nodes[name])
        for dep in deps:
            if dep not in keep and dep in index.nodes:
                keep.add(dep)
                queue.append(dep)
    out = graph_header(graph_def)
    out.node.extend(node for name, node in nodes.items() if name in keep)  # graph order (dicts keep it)
    return out


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``... -- the first not in ``taken`` (which it is added to)."""
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def drop_dangling_colocations(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Remove ``_class`` ``loc:@X`` entries whose X is not in the graph (in place); returns the nodes changed."""
    names = {n.name for n in graph_def.node}
    changed = []
    for node in graph_def.node:
        if "_class" not in node.attr:
            continue
        entries = list(node.attr["_class"].list.s)
        kept = [e for e in entries if not e.startswith(b"loc:@") or e[5:].decode() in names]
        if len(kept) != len(entries):
            changed.append(node.name)
            if kept:
                del node.attr["_class"].list.s[:]
                node.attr["_class"].list.s.extend(kept)
            else:
                del node.attr["_class"]
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
