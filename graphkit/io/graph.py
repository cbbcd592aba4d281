"""A light index over a GraphDef (never a new IR): tensor references, consumers, topological order.

The GraphDef stays the source of truth. :class:`Graph` pairs it with the Const payloads that were left in
the mmapped input file (see protofile.py); every reader of Const values goes through :meth:`Graph.const`.
"""

from __future__ import annotations

import gc
import os
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress
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

    def built(self) -> list[dict[str, Any] | set[str]]:
        """The tables built so far."""
        return [t for t in (self.ops, self.colocated, self.shaped) if t is not None]

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
        """Re-read these nodes after they were changed in place (new ones too). The consumer tables, when
        built, are updated for their edges only, so a pass that changes a few nodes of a large graph at a
        time does not rebuild them each time."""
        changed: dict[str, Sequence[str]] = {}  # name -> its input strings before (empty for a new node)
        for name in names:
            node = self.nodes[name]
            if name not in changed:
                changed[name] = self.inputs.get(name, ())
            self.inputs[name] = list(node.input)
            self.tables.read(name, node)
        self._edges_changed(changed)

    def set_inputs(self, changes: Mapping[str, list[str]]) -> None:
        """Give these nodes these input strings (the lists are taken over), in place; nothing else about
        them is re-read (the cheap way to rewire many nodes: a file's unparsed node is not parsed for it)."""
        inputs = self.inputs
        before = {name: inputs[name] for name in changes} if self._tables_built() else {}
        self._write_inputs(changes)
        inputs.update(changes)
        if before:
            self._edges_changed(before)

    def _write_inputs(self, changes: Mapping[str, list[str]]) -> None:
        nodes = self.nodes
        for name, texts in changes.items():
            node = nodes[name]
            del node.input[:]
            node.input.extend(texts)

    def replace(self, node: node_def_pb2.NodeDef) -> None:
        """Put ``node`` in place of the node of its name (its position kept; a copy is taken)."""
        self.nodes[node.name].CopyFrom(node)
        self.refresh([node.name])

    def remove(self, names: Collection[str], *, unread: bool = False) -> None:
        """Forget these nodes, and drop the control inputs other nodes take from them; nothing may still read
        their data (``unread``: the caller rewired every reader, control inputs too, so none are looked
        for). The index then holds the graph: write it from the index (:meth:`restricted`, or a file's
        :func:`~graphkit.io.scan.write_table`) -- a GraphDef it was built over keeps the nodes."""
        if not names:
            return
        if not unread:
            self.drop_controls_from(names)
        if self._tables_built():
            self._edges_changed({name: self.inputs[name] for name in names}, gone=True)
        drop_keys(names, *self._node_tables(), *self.tables.built())

    def drop_controls_from(self, names: Collection[str]) -> list[str]:
        """Drop the control inputs other nodes take from these nodes, in place; returns the nodes changed."""
        inputs = self.inputs
        readers = sorted({c for name in names for c in self.control_consumers.get(name, ()) if c not in names})
        self.set_inputs({c: [i for i in inputs[c] if not (i.startswith("^") and i[1:] in names)] for c in readers})
        return readers

    def _node_tables(self) -> list[dict[str, Any] | set[str]]:
        """What holds a node by name besides the cached tables: what :meth:`remove` drops it from."""
        assert isinstance(self.nodes, dict)
        return [self.nodes, self.inputs]

    def _tables_built(self) -> bool:
        return self._consumers is not None or self._deps is not None

    def _edges_changed(self, before: dict[str, Sequence[str]], gone: bool = False) -> None:
        """Bring the built dependency and consumer tables up to date for nodes whose inputs were ``before``
        and are now ``self.inputs`` (``gone``: the nodes are going, so they have none). Building them again
        costs a pass over every edge; this, the edges of these nodes and of their producers' readers (each
        producer's list filtered once per call), so never much more."""
        if self._consumers is None and self._deps is None:
            return
        if self._deps is not None:
            for name in before:
                if gone:
                    self._deps.pop(name, None)
                else:
                    self._deps[name] = [input_node(t) for t in self.inputs[name]]
        if self._consumers is None or self._control_consumers is None:
            return
        consumers, control = self._consumers, self._control_consumers
        for producer in {input_node(t) for texts in before.values() for t in texts}:
            if producer in consumers:
                consumers[producer] = [(c, i) for c, i in consumers[producer] if c not in before]
            if producer in control:
                control[producer] = [c for c in control[producer] if c not in before]
        if gone:
            for name in before:
                consumers.pop(name, None)
                control.pop(name, None)
            return
        for name in before:
            for i, text in enumerate(self.inputs[name]):
                if text.startswith("^"):
                    control[text[1:]].append(name)
                else:
                    consumers[text.partition(":")[0]].append((name, i))

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
        self._reset()  # (its readers' entries name it by its old name)

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

    def unparsed_attr_keys(self) -> tuple[Collection[str], Mapping[str, Sequence[str]]]:
        """The nodes not held as messages, and attr names by node name for them (a superset: the table
        may hold other names too). None here; a TableIndex's come from the file."""
        return (), {}

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

    def of_ops(self, ops: Collection[str]) -> list[str]:
        """The nodes whose op is one of ``ops``, in order -- found at C speed (a pass's candidates on a large
        graph, without a Python step per node)."""
        wanted = ops if isinstance(ops, (set, frozenset)) else set(ops)
        table = self.ops
        return list(compress(table, map(wanted.__contains__, table.values())))

    def is_consumed(self, name: str) -> bool:
        return bool(self.consumers.get(name) or self.control_consumers.get(name))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a graph-sized index is built or edited (and on again after,
    if it was): the index's hundreds of thousands of strs, tuples and dict entries hold no cycles, yet each
    full collection walks them all -- a tenth of a 100,000-node optimize."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def drop_keys(names: Collection[str], *tables: dict[str, Any] | set[str]) -> None:
    """Each of ``names`` removed from each table (dict or set) holding it: an index's tables when many nodes
    go (in C when built: a dedupe on a 100,000-node graph removes tens of thousands)."""
    from graphkit.io.scan import compiled

    helpers = compiled()
    if helpers is not None:
        helpers.drop_keys(names, *tables)
        return
    for table in tables:
        if isinstance(table, set):
            table.difference_update(names)
        elif table and not table.keys().isdisjoint(names):
            for name in names:
                table.pop(name, None)


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




NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*\Z")  # TF's graph_constructor.cc IsValidNodeName


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
