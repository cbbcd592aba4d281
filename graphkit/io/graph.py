"""A light index over a GraphDef (never a new IR): tensor references, consumers, topological order.

The GraphDef stays the source of truth. :class:`Graph` pairs it with the Const payloads that were left in
the mmapped input file (see protofile.py); every reader of Const values goes through :meth:`Graph.const`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.proto import function_pb2, graph_pb2, node_def_pb2, tensor_pb2

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


@dataclass
class NodeTables:
    """The per-node facts an index caches, each keyed by node name and built on first use (None until
    then). :meth:`read`, :meth:`drop` and :meth:`without` keep them right through edits and restriction:
    a new cached fact is a field here and a line in :meth:`read`."""

    ops: dict[str, str] | None = None
    colocated: dict[str, list[str]] | None = None  # only nodes with loc:@ targets
    shaped: set[str] | None = None  # nodes recording _output_shapes

    def read(self, name: str, node: node_def_pb2.NodeDef) -> None:
        """Bring each built table up to date with ``node`` (new, or changed in place)."""
        if self.ops is not None:
            self.ops[name] = node.op
        if self.colocated is not None:
            targets = colocation_targets(node)
            if targets:
                self.colocated[name] = targets
            else:
                self.colocated.pop(name, None)
        if self.shaped is not None:
            if "_output_shapes" in node.attr:
                self.shaped.add(name)
            else:
                self.shaped.discard(name)

    def drop(self, name: str) -> None:
        """Forget a node (renamed or removed)."""
        for table in (self.ops, self.colocated):
            if table is not None:
                table.pop(name, None)
        if self.shaped is not None:
            self.shaped.discard(name)

    def without(self, gone: list[str], kept: Collection[str]) -> NodeTables:
        """Copies of the built tables without the ``gone`` nodes (``kept``: the names that stay)."""
        return NodeTables(
            without_keys(self.ops, gone) if self.ops is not None else None,
            {k: v for k, v in self.colocated.items() if k in kept} if self.colocated is not None else None,
            {k for k in self.shaped if k in kept} if self.shaped is not None else None)


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

    def __init__(self, graph: graph_pb2.GraphDef | function_pb2.FunctionDef | None, *,
                 nodes: Mapping[str, node_def_pb2.NodeDef] | None = None,
                 inputs: dict[str, Sequence[str]] | None = None, duplicates: list[str] | None = None,
                 tables: NodeTables | None = None) -> None:
        """Index a GraphDef, or a FunctionDef's body (whose inputs may also name its ``arguments``). The
        keyword arguments hand over tables already built (:meth:`restricted`, a file's node table): the
        index's whole state is set here, whichever way it is made."""
        if nodes is None or inputs is None:
            assert graph is not None
            nodes, inputs, duplicates = {}, {}, []
            for node in self._container(graph):
                name = node.name
                if name in nodes:
                    duplicates.append(name)
                nodes[name] = node
                inputs[name] = list(node.input)
        self.function = graph if isinstance(graph, function_pb2.FunctionDef) else None
        self.graph_def = graph if isinstance(graph, graph_pb2.GraphDef) else None
        self.arguments: frozenset[str] = frozenset(
            a.name for a in self.function.signature.input_arg) if self.function is not None else frozenset()
        self.nodes = nodes
        self.inputs = inputs  # each node's input strings
        self.duplicates = duplicates or []
        self.tables = tables or NodeTables()
        self._reset()

    @staticmethod
    def _container(graph: graph_pb2.GraphDef | function_pb2.FunctionDef) -> Any:
        return graph.node_def if isinstance(graph, function_pb2.FunctionDef) else graph.node

    def _reset(self) -> None:
        self._deps: dict[str, list[str]] | None = None
        self._consumers: dict[str, list[tuple[str, int]]] | None = None
        self._control_consumers: dict[str, list[str]] | None = None

    def refresh(self, names: Iterable[str]) -> None:
        """Re-read these nodes after they were changed in place."""
        for name in names:
            node = self.nodes[name]
            self.inputs[name] = list(node.input)
            self.tables.read(name, node)
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
        self.tables.drop(old)
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
        _, inputs, tables = self._restricted_tables(keep)
        return GraphIndex(out, nodes={n.name: n for n in out.node}, inputs=inputs, tables=tables)

    def _restricted_tables(self, keep: Collection[str]) -> tuple[list[str], dict[str, Sequence[str]], NodeTables]:
        """The nodes not in ``keep``, and the input strings and cached tables without them (copying a dict and
        deleting the few gone is several times faster than building the many kept)."""
        gone = [name for name in self.inputs if name not in keep]
        inputs = without_keys(self.inputs, gone)
        return gone, inputs, self.tables.without(gone, inputs)

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
        if self.tables.ops is None:
            self.tables.ops = {name: node.op for name, node in self.nodes.items()}
        return self.tables.ops

    @property
    def colocated(self) -> dict[str, list[str]]:
        """node -> the nodes its ``_class`` attr colocates it with (``loc:@X``); only nodes that have some."""
        if self.tables.colocated is None:
            self.tables.colocated = {name: targets for name, node in self.nodes.items()
                                     if "_class" in node.attr and (targets := colocation_targets(node))}
        return self.tables.colocated

    @property
    def shaped(self) -> set[str]:
        """Nodes that record ``_output_shapes``."""
        if self.tables.shaped is None:
            self.tables.shaped = {name for name, node in self.nodes.items() if "_output_shapes" in node.attr}
        return self.tables.shaped

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


def attr_text(raw: bytes) -> str:
    """A name held in a bytes attr (``_class``'s ``loc:@X``, ``frame_name``): UTF-8, or, in a damaged file,
    escaped (so it matches no node and the checks report it, rather than a decode error escaping)."""
    return raw.decode("utf-8", "backslashreplace")


def colocation_targets(node: node_def_pb2.NodeDef) -> list[str]:
    """Nodes named in a node's ``_class`` colocation attr (``loc:@X``). The attr holds bytes: a name that
    is not UTF-8 (a damaged file) comes back escaped, so it matches no node and validate reports it."""
    if "_class" not in node.attr:
        return []
    return [attr_text(s[5:]) for s in node.attr["_class"].list.s if s.startswith(b"loc:@")]


def as_index(graph: graph_pb2.GraphDef | GraphIndex) -> GraphIndex:
    """The graph's index (built when given a GraphDef)."""
    return graph if isinstance(graph, GraphIndex) else GraphIndex(graph)




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


def sort_topologically_in_place(graph_def: graph_pb2.GraphDef) -> bool:
    """Put every node after its inputs (a NextIteration's edge into a loop's Merge aside: the cycle TF1
    loops have), keeping the file's order wherever it already is one; returns whether anything moved. A
    graph with another cycle keeps its order (what TF's importer then says is the user's to read)."""
    import heapq

    nodes = list(graph_def.node)
    back = {n.name for n in nodes if n.op in ("NextIteration", "RefNextIteration")}
    names = {n.name for n in nodes}
    seen: set[str] = set()
    for node in nodes:  # the usual case first, cheaply: already in order
        loop_merge = node.op in ("Merge", "RefMerge")
        if any(d not in seen and d in names and not (loop_merge and d in back) for d in map(input_node, node.input)):
            break
        seen.add(node.name)
    else:
        return False
    position = {n.name: i for i, n in enumerate(nodes)}

    def deps(node: node_def_pb2.NodeDef) -> list[int]:
        loop_merge = node.op in ("Merge", "RefMerge")
        names = {input_node(i) for i in node.input}
        return [position[d] for d in names if d in position and not (loop_merge and d in back)]

    needs = [deps(n) for n in nodes]
    if all(all(d < i for d in ds) for i, ds in enumerate(needs)):
        return False
    waiting = [len(ds) for ds in needs]
    readers: list[list[int]] = [[] for _ in nodes]
    for i, ds in enumerate(needs):
        for d in ds:
            readers[d].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) != len(nodes):
        return False
    del graph_def.node[:]
    graph_def.node.extend(nodes[i] for i in order)
    return True


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


def follow_chains(mapping: dict[TensorRef, TensorRef]) -> dict[TensorRef, TensorRef]:
    """``mapping`` with each value followed while it is itself a key (a pass-through of a pass-through goes
    to the end of the chain; a cycle stops where it closes). :func:`rewire` maps one step -- what a swap
    needs -- so passes that remove chains of nodes resolve them first."""
    out = {}
    for key, target in mapping.items():
        seen = {key}
        while target in mapping and target not in seen:
            seen.add(target)
            target = mapping[target]
        out[key] = target
    return out


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


NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")  # TF's graph_constructor.cc IsValidNodeName


def valid_node_name(text: str) -> str:
    """``text`` made a name TF accepts (:data:`NODE_NAME`), for names from other frameworks: characters TF
    does not allow become ``_``, empty scope parts go, and a name cannot start with ``_``, ``-``, ``>``
    or ``/`` (TF keeps a leading ``_`` for its own nodes). Valid names come back unchanged."""
    if NODE_NAME.match(text):
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
        kept = [e for e in entries if not e.startswith(b"loc:@") or attr_text(e[5:]) in names
                or attr_text(e[5:]) in arguments]
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
