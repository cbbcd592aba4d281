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


class GraphIndex:
    """Nodes by name and the consumers of each node, built once over a GraphDef."""

    def __init__(self, graph_def: graph_pb2.GraphDef) -> None:
        self.graph_def = graph_def
        self.nodes: dict[str, node_def_pb2.NodeDef] = {}
        self.duplicates: list[str] = []
        self.consumers: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.control_consumers: dict[str, list[str]] = defaultdict(list)
        for node in graph_def.node:
            if node.name in self.nodes:
                self.duplicates.append(node.name)
            self.nodes[node.name] = node
            for i, text in enumerate(node.input):
                ref = parse_ref(text)
                if ref.control:
                    self.control_consumers[ref.node].append(node.name)
                else:
                    self.consumers[ref.node].append((node.name, i))

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


def topological_order(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Node names with every node after its inputs. TF1 loops are cut at NextIteration -> Merge back edges,
    as TF's graph constructor does; any other cycle is an error naming the nodes on it."""
    index = GraphIndex(graph_def)
    pending: dict[str, int] = {}
    users: dict[str, list[str]] = defaultdict(list)
    for node in graph_def.node:
        deps = 0
        for text in node.input:
            src = parse_ref(text).node
            if src not in index.nodes:
                continue
            if node.op in ("Merge", "RefMerge") and index.nodes[src].op in ("NextIteration", "RefNextIteration"):
                continue
            deps += 1
            users[src].append(node.name)
        pending[node.name] = deps
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


def validate(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Problems that stop TF from importing a graph: duplicate names, dangling inputs, bad colocations."""
    index = GraphIndex(graph_def)
    problems = [f"duplicate node name '{n}'" for n in index.duplicates]
    for node in graph_def.node:
        if not node.op:
            problems.append(f"node '{node.name}' has no op")
        for text in node.input:
            src = parse_ref(text).node
            if src not in index.nodes:
                problems.append(f"node '{node.name}' reads '{text}', which is not in the graph")
        for target in index.colocations(node):
            if target not in index.nodes:
                problems.append(f"node '{node.name}' is colocated with '{target}', which is not in the graph")
    return problems


def node_names(graph_def: graph_pb2.GraphDef) -> Iterable[str]:
    return (n.name for n in graph_def.node)


def extract_subgraph(graph_def: graph_pb2.GraphDef, outputs: Iterable[str],
                     colocations: bool = True) -> graph_pb2.GraphDef:
    """TF's extract_sub_graph: keep what ``outputs`` (node names) need through data inputs, control
    inputs and ``_class`` colocations; original node order; library and versions copied.

    With ``colocations=False`` colocation targets do not keep nodes alive (a cut graph's upstream goes away);
    call :func:`drop_dangling_colocations` on the result."""
    index = GraphIndex(graph_def)
    queue: deque[str] = deque()
    for name in outputs:
        index.node(name)  # a clear error naming the closest node
        queue.append(name)
    keep = set(queue)
    while queue:
        node = index.nodes[queue.popleft()]
        deps = [parse_ref(t).node for t in node.input]
        if colocations:
            deps += index.colocations(node)
        for dep in deps:
            if dep not in keep and dep in index.nodes:
                keep.add(dep)
                queue.append(dep)
    out = graph_header(graph_def)
    out.node.extend(n for n in graph_def.node if n.name in keep)
    return out


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
