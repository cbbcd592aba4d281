"""Binary GraphDefs as a table of nodes read straight from the file's bytes, and written back by copying.

Graph-only passes (prune, remap-input, optimize's) need each node's name, op, inputs and colocations, and
rewrite a handful of nodes -- or, as a dedupe does, rewire many, which :meth:`TableIndex.set_inputs` records
without parsing them and :func:`write_table` writes as their file bytes with the inputs swapped. On a
100,000-node graph building 100,000 protobuf messages and reading their fields from Python costs most of the
time, so a compiled scanner (``_wirescan.c``, optional at install) reads those fields from the wire format
in one pass; a node becomes a NodeDef only when a pass asks for it, and the result is written as the input's
bytes, unchanged nodes copied, changed ones re-serialized.

Without the compiled scanner (no C compiler at install) :func:`scan_graph_file` returns None and callers
use the protobuf path: the same results, slower on big graphs. ``prune``/``remap_input`` take
``scanner=False`` to keep to that path; the CLI maps ``GRAPHKIT_NO_SCANNER=1`` to it.
"""

from __future__ import annotations

import array
import functools
import mmap
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphkit.io.graph import FileSlice, GraphIndex, NodeTables, collector_paused, without_keys
from graphkit.io.save import Chunk, Progress, atomic_write, len_field, write_chunks
from graphkit.proto import graph_pb2, node_def_pb2

try:
    from graphkit.io import _wirescan
except ImportError:  # built without a C compiler
    _wirescan = None


def scanner_from_environment() -> bool:
    """What the CLI passes as ``scanner=``: False when ``GRAPHKIT_NO_SCANNER`` is set (the protobuf path
    only, to compare or to rule the scanner out). Library code never reads the environment itself."""
    return not os.environ.get("GRAPHKIT_NO_SCANNER")

_MMAP_ABOVE = 16 << 20  # larger files are mapped, and their long runs copied file to file
_SLICE_ABOVE = 1 << 20


def available() -> bool:
    """Whether the compiled scanner was built (``pip install`` with a C compiler)."""
    return _wirescan is not None


def compiled() -> Any:
    """The compiled module (``_wirescan.c``), or None when it was not built: what callers with a compiled
    fast path and a Python one of the same meaning choose by."""
    return _wirescan


@dataclass
class NodeTable:
    """What the scanner read: the nodes' names in file order, by name their position, input strings, op,
    ``_output_shapes`` presence, ``_class`` colocations and attr names, and each node's byte span."""

    path: Path
    data: bytes | mmap.mmap
    names: list[str]
    positions: dict[str, int]  # a name given twice: the last node, at the first one's place (dict semantics)
    inputs: dict[str, Sequence[str]]
    ops: dict[str, str]
    duplicates: list[str]
    spans: memoryview  # int64 triples: field start, payload start, field end
    shaped: set[str]
    colocated: dict[str, list[str]]  # loc:@ targets, for nodes that have some
    header: list[tuple[int, int, int]]  # (field number, start, end) of every top-level non-node field
    attrs: dict[str, tuple[str, ...]]  # each node's attr names
    devices: dict[str, str]  # each distinct non-empty device string -> the first node with it

    def node(self, i: int) -> node_def_pb2.NodeDef:
        return _node_at(self.path, self.data, self.spans, self.names, i)

    @property
    def has_library(self) -> bool:
        """A function library with something in it (an empty one, ``12 00``, is common in frozen graphs)."""
        return any(number == 2 and end - start > 2 for number, start, end in self.header)


def _node_at(path: Path, data: bytes | mmap.mmap, spans: memoryview, names: list[str], i: int) -> node_def_pb2.NodeDef:
    """Node ``i`` of a scanned file, parsed by protobuf (the scanner reads names and inputs; protobuf the rest)."""
    from google.protobuf.message import DecodeError

    from graphkit.errors import GraphkitError

    try:
        return node_def_pb2.NodeDef.FromString(data[spans[3 * i + 1]:spans[3 * i + 2]])
    except DecodeError as exc:
        raise GraphkitError(f"node '{names[i]}' is not a valid NodeDef ({exc}); the file is corrupt", path) from None


def scan_graph_file(path: str | os.PathLike[str]) -> NodeTable | None:
    """The node table of a binary GraphDef file, or None when the scanner is not built or the file is
    anything else (text, MetaGraphDef, SavedModel, not valid): the protobuf path then handles it, and
    reports what is wrong."""
    from graphkit.io.loader import PLAUSIBLE_OP

    opened = _checked_graph_bytes(path)
    if opened is None:
        return None
    p, data = opened
    assert _wirescan is not None  # (_checked_graph_bytes returns None without it)
    try:
        with collector_paused():  # (hundreds of thousands of objects, no cycles among them)
            (names, positions, inputs, ops, duplicates, spans, shaped, colocated, header, attrs,
             devices) = _wirescan.scan_graph(data)
    except ValueError:
        return None
    if "" in positions or not all(PLAUSIBLE_OP.match(op) for op in set(ops.values())):
        return None  # the loader's message says what is wrong
    return NodeTable(p, data, names, positions, inputs, ops, duplicates, memoryview(spans).cast("q"), shaped,
                     colocated, header, attrs, devices)


@dataclass
class NameTable:
    """A binary GraphDef's node names in file order and each node's byte span, nothing else read: what
    comparing two files needs (:func:`scan_node_names`). ``node(i)`` parses one node."""

    path: Path
    data: bytes | mmap.mmap
    names: list[str]
    spans: memoryview  # int64 triples: field start, payload start, field end
    header: list[tuple[int, int, int]]  # (field number, start, end) of every top-level non-node field

    def node(self, i: int) -> node_def_pb2.NodeDef:
        return _node_at(self.path, self.data, self.spans, self.names, i)

    def header_graph(self) -> graph_pb2.GraphDef:
        """The file's non-node fields (versions, library) as a GraphDef without nodes."""
        return graph_pb2.GraphDef.FromString(b"".join(bytes(self.data[s:e]) for _, s, e in self.header))


def scan_node_names(path: str | os.PathLike[str]) -> NameTable | None:
    """The names and byte spans of a binary GraphDef's nodes (checked as :func:`scan_graph_file` checks),
    or None, as there."""
    opened = _checked_graph_bytes(path)
    if opened is None:
        return None
    p, data = opened
    assert _wirescan is not None
    try:
        names, spans, header = _wirescan.node_names(data)
    except ValueError:
        return None
    return NameTable(p, data, names, memoryview(spans).cast("q"), header)


def _checked_graph_bytes(path: str | os.PathLike[str]) -> tuple[Path, bytes | mmap.mmap] | None:
    """A binary GraphDef file's bytes (mmapped when large) once the wire check passed, or None."""
    from graphkit.errors import GraphkitError
    from graphkit.io.loader import is_proto_file, looks_like_text, sniff_binary

    if _wirescan is None:
        return None
    p = Path(path)
    try:
        size = p.stat().st_size if is_proto_file(p) else 0
        if size == 0:
            return None
        with open(p, "rb") as fh:
            data: bytes | mmap.mmap = (mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size > _MMAP_ABOVE
                                       else fh.read())
        if looks_like_text(data[:4096]) or sniff_binary(memoryview(data), p) != "GraphDef":
            return None
        _wirescan.check(data, *_graph_schema())  # what the table's copies would carry over, as strictly as protobuf
    except (OSError, ValueError, GraphkitError):
        return None
    return p, data


# The check's depth bound (from the GraphDef down); protobuf's is 100 levels from the message parsed. A
# deeper file takes the protobuf path, which decides.
_CHECK_DEPTH = 64

_KIND = {"varint": 0, "fixed64": 1, "fixed32": 2, "bytes": 3, "string": 4, "message": 5, "dtype": 6, "group": 7}


def _graph_schema() -> tuple[bytes, bytes, int, tuple[int, int, int, int, int], bytes]:
    """The arguments of ``_wirescan.check`` after the buffer for a GraphDef (see :func:`_schema`)."""

    return _schema(graph_pb2.GraphDef.DESCRIPTOR.full_name)


@functools.cache
def _schema(root: str) -> tuple[bytes, bytes, int, tuple[int, int, int, int, int], bytes]:
    """The arguments of ``_wirescan.check`` after the buffer for message ``root`` (a GraphDef or a NodeDef,
    by full name): the schema of every message it holds, from the protobuf descriptors (so it follows the
    compiled protos), the bitmap of valid DataType values, the depth bound, the places of TensorProto,
    TensorShapeProto, AttrValue, the NodeDef attr map entry and NodeDef in the schema (checked further) and the
    bytes per element of each DataType (:data:`graphkit.io.dtypes.ITEMSIZE`)."""
    from google.protobuf.descriptor import FieldDescriptor as F

    from graphkit.io.dtypes import ITEMSIZE
    from graphkit.proto import attr_value_pb2, node_def_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

    fixed64 = {F.TYPE_DOUBLE, F.TYPE_FIXED64, F.TYPE_SFIXED64}
    fixed32 = {F.TYPE_FLOAT, F.TYPE_FIXED32, F.TYPE_SFIXED32}
    dtype_enum = types_pb2.DataType.DESCRIPTOR.full_name
    order: dict[str, int] = {}
    messages: list[list[tuple[int, int, int]]] = []

    def visit(desc: Any) -> int:
        if desc.full_name in order:
            return order[desc.full_name]
        order[desc.full_name] = len(messages)
        messages.append([])
        fields = []
        for field in desc.fields:
            sub = 0
            if field.type == F.TYPE_MESSAGE:
                kind, sub = "message", visit(field.message_type)
            elif field.type == F.TYPE_GROUP:
                kind = "group"
            elif field.type == F.TYPE_STRING:
                kind = "string"
            elif field.type == F.TYPE_BYTES:
                kind = "bytes"
            elif field.type == F.TYPE_ENUM and field.enum_type.full_name == dtype_enum:
                kind = "dtype"
            else:
                kind = "fixed64" if field.type in fixed64 else "fixed32" if field.type in fixed32 else "varint"
            fields.append((field.number, _KIND[kind], sub))
        messages[order[desc.full_name]] = fields
        return order[desc.full_name]

    visit({m.DESCRIPTOR.full_name: m.DESCRIPTOR for m in (graph_pb2.GraphDef, node_def_pb2.NodeDef)}[root])
    words = [len(messages)]
    offsets_at = len(words)
    words += [0] * len(messages)
    for i, fields in enumerate(messages):
        words[offsets_at + i] = len(words)
        words.append(len(fields))
        for entry in fields:
            words += entry
    values = types_pb2.DataType.values()
    bitmap = bytearray(max(values) // 8 + 1)
    for value in values:
        bitmap[value >> 3] |= 1 << (value & 7)
    itemsize = bytearray(max(ITEMSIZE) + 1)
    for code, size in ITEMSIZE.items():
        itemsize[code] = size
    return (array.array("i", words).tobytes(), bytes(bitmap), _CHECK_DEPTH,
            (order[tensor_pb2.TensorProto.DESCRIPTOR.full_name],
             order[tensor_shape_pb2.TensorShapeProto.DESCRIPTOR.full_name],
             order[attr_value_pb2.AttrValue.DESCRIPTOR.full_name],
             order[f"{node_def_pb2.NodeDef.DESCRIPTOR.full_name}.AttrEntry"],
             order[node_def_pb2.NodeDef.DESCRIPTOR.full_name]),
            bytes(itemsize))


def node_wire_problem(node: node_def_pb2.NodeDef) -> str | None:
    """What the compiled check finds wrong in one node's wire form (protobuf can keep bytes TF then reads
    differently, such as an attr map entry without its value), or None; None without the scanner.
    :data:`TOO_DEEP` is the check's own limit, not a fault of the node."""
    if _wirescan is None:
        return None
    try:
        _wirescan.check(node.SerializeToString(), *_schema(node_def_pb2.NodeDef.DESCRIPTOR.full_name))
    except ValueError as exc:
        return str(exc)
    return None


TOO_DEEP = "nested deeper than the scanner checks"  # _wirescan.c's message


class _LazyNodes(Mapping[str, node_def_pb2.NodeDef]):
    """name -> NodeDef, parsed from the table on first access; new nodes (position -1) live in the cache."""

    def __init__(self, table: NodeTable, positions: dict[str, int], cache: dict[str, node_def_pb2.NodeDef]) -> None:
        self.table, self.positions, self.cache = table, positions, cache
        self.owner: TableIndex | None = None

    def __getitem__(self, name: str) -> node_def_pb2.NodeDef:
        node = self.cache.get(name)
        if node is None:
            node = self.cache[name] = self.table.node(self.positions[name])
            owner = self.owner
            if owner is not None and name in owner.rewired:  # inputs set while it was not parsed
                owner.rewired.discard(name)
                del node.input[:]
                node.input.extend(owner.inputs[name])
                owner.modified.add(name)
        return node

    def __contains__(self, name: object) -> bool:
        return name in self.positions

    def __iter__(self) -> Iterator[str]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


class TableIndex(GraphIndex):
    """A :class:`GraphIndex` over a :class:`NodeTable`: the same passes run on it, and :func:`write_table`
    writes the result. Nodes changed through :meth:`refresh` or added are re-serialized; the rest are
    copied as bytes. The index takes the table's dicts over (passes change them in place), but for its
    inputs: the table keeps the file's (what a rewired node's bytes hold)."""

    table: NodeTable
    nodes: _LazyNodes

    def __init__(self, table: NodeTable, *, nodes: _LazyNodes | None = None,
                 inputs: dict[str, Sequence[str]] | None = None, tables: NodeTables | None = None,
                 modified: set[str] | None = None, rewired: set[str] | None = None) -> None:
        """Index a file's node table (the keyword arguments: a restriction's, see :meth:`restricted`)."""
        self.table = table
        super().__init__(None, nodes=_LazyNodes(table, table.positions, {}) if nodes is None else nodes,
                         inputs=dict(table.inputs) if inputs is None else inputs,
                         duplicates=list(table.duplicates) if nodes is None else [],
                         tables=tables or NodeTables(table.ops, table.colocated, table.shaped))
        self.modified: set[str] = modified or set()  # nodes to serialize from their message
        self.rewired: set[str] = rewired or set()  # unparsed nodes given new inputs (write_table writes
        # their file bytes, table.inputs, with the inputs swapped)
        self.nodes.owner = self

    def _write_inputs(self, changes: Mapping[str, list[str]]) -> None:
        cache = self.nodes.cache
        parsed = {name: changes[name] for name in cache if name in changes} if len(cache) < len(changes) else \
            {name: texts for name, texts in changes.items() if name in cache}
        self.rewired.update(changes.keys() - parsed.keys())
        super()._write_inputs(parsed)
        self.modified.update(parsed)

    def refresh(self, names: Iterable[str]) -> None:
        names = list(names)
        self.modified.update(names)
        super().refresh(names)

    def add(self, new_nodes: list[node_def_pb2.NodeDef]) -> None:
        for node in new_nodes:
            copy = node_def_pb2.NodeDef()
            copy.CopyFrom(node)
            self.nodes.positions[node.name] = -1
            self.nodes.cache[node.name] = copy
        self.refresh(n.name for n in new_nodes)

    def replace(self, node: node_def_pb2.NodeDef) -> None:
        copy = node_def_pb2.NodeDef()
        copy.CopyFrom(node)
        self.nodes.cache[node.name] = copy  # (the file's node is not parsed first)
        self.rewired.discard(node.name)
        self.refresh([node.name])

    def _node_tables(self) -> list[dict[str, Any] | set[str]]:
        return [self.nodes.positions, self.inputs, self.nodes.cache, self.rewired, self.modified]

    def same_stored(self, names: list[str], limit: int) -> dict[str, str]:
        """Among these nodes, the unchanged ones whose bytes in the file (up to ``limit`` past the name) are
        the same but for their names: each later one -> the first (compared in C, nothing parsed)."""
        assert _wirescan is not None  # (a table comes from the scanner)
        same: dict[str, str] = _wirescan.same_bodies(self.table.data, self.table.spans, names, self.nodes.positions,
                                                     (self.nodes.cache, self.rewired), limit)
        return same

    def stored_body(self, name: str) -> memoryview | FileSlice | None:
        """A node's bytes in the file without its name (op, inputs, device and attrs as written), when the
        node is unchanged and its name is written first (as every protobuf writer does); else None. Two
        nodes with equal bodies are the same but for their names. A long body in a mapped file comes as a
        :class:`FileSlice`, read through the kernel rather than the mapping."""
        position = self.nodes.positions.get(name, -1)
        if position < 0 or name in self.nodes.cache:
            return None
        table, spans = self.table, self.table.spans
        start, end = spans[3 * position + 1], spans[3 * position + 2]
        encoded = name.encode()
        head = len_field(1, len(encoded)) + encoded
        if table.data[start:start + len(head)] != head:
            return None
        start += len(head)
        if isinstance(table.data, mmap.mmap) and end - start >= _SLICE_ABOVE:
            return FileSlice(str(table.path), start, end - start)
        return memoryview(table.data)[start:end]

    def parsed_nodes(self) -> Iterable[node_def_pb2.NodeDef]:
        positions = self.nodes.positions
        return [node for name, node in self.nodes.cache.items() if name in positions]

    def devices(self) -> dict[str, str]:
        positions, cache = self.nodes.positions, self.nodes.cache
        out = {device: name for device, name in self.table.devices.items()
               if name in positions and name not in cache}  # (a device only removed nodes had is gone too)
        for name, node in cache.items():
            if node.device and name in positions:
                out.setdefault(node.device, name)
        return out

    def unparsed_attr_keys(self) -> tuple[Collection[str], Mapping[str, Sequence[str]]]:
        return self.nodes.positions.keys() - self.nodes.cache.keys(), self.table.attrs

    def restricted(self, keep: Collection[str]) -> TableIndex:
        gone, inputs, tables = self._restricted_tables(keep)
        positions = without_keys(self.nodes.positions, gone)
        return TableIndex(self.table, nodes=_LazyNodes(self.table, positions, self.nodes.cache), inputs=inputs,
                          tables=tables, modified={n for n in self.modified if n in keep},
                          rewired={n for n in self.rewired if n in keep})

    def _rekey(self, old: str, new: str) -> None:
        self.nodes[old]  # parsed into the cache
        self.nodes.positions[new] = self.nodes.positions.pop(old)
        self.nodes.cache[new] = self.nodes.cache.pop(old)
        self.modified.discard(old)


def write_table(index: TableIndex, path: str | os.PathLike[str], *, order: Sequence[str] | None = None,
                progress: Progress | None = None) -> int:
    """Write ``index``'s nodes as a binary GraphDef: the input's bytes with the spans of nodes no longer in
    the graph cut out and of changed nodes re-serialized in place (so top-level fields such as versions and
    the node order stay as they were), new nodes at the end. ``order``: every node's name, in the order to
    write them (the top-level fields first, then runs of nodes still adjacent copied as one span). Atomic,
    and never over the input. Returns bytes written."""
    if order is not None:
        return _write_ordered(index, path, order, progress)
    table = index.table
    spans = table.spans
    positions = index.nodes.positions
    chunks: list[Chunk] = []
    if not isinstance(table.data, mmap.mmap):  # a file read into memory: rewritten in one C call
        assert _wirescan is not None  # (a table comes from the scanner)
        fields = {name: b"".join(bytes(c) for c in _node_chunks(index, name)) for name in index.modified
                  if positions[name] >= 0}  # (the many a dedupe rewires are spliced in C)
        body, new = _wirescan.splice(table.data, spans, positions, fields, index.rewired, index.inputs)
        chunks.append(body)
        for name in new:
            chunks += _node_field(index.nodes[name])
        with atomic_write(path, [table.path]) as fh:
            return write_chunks(chunks, fh, progress)
    touched = index.modified | index.rewired
    changed = dict(zip(map(positions.__getitem__, touched), touched, strict=True))  # position -> (new) name
    changed.pop(-1, None)  # (new nodes: written at the end)
    cuts = sorted(set(range(len(table.names))).difference(positions.values()).union(changed))  # spans not
    # copied as is: removed nodes and changed ones
    at = 0
    for p in cuts:
        start, end = spans[3 * p], spans[3 * p + 2]
        if start > at:
            chunks.append(_source_chunk(table, at, start))
        if p in changed:
            chunks += _node_chunks(index, changed[p])
        at = end
    if at < len(table.data):
        chunks.append(_source_chunk(table, at, len(table.data)))
    for name in [name for name, p in positions.items() if p < 0]:
        chunks += _node_field(index.nodes[name])
    with atomic_write(path, [table.path]) as fh:
        return write_chunks(chunks, fh, progress)


def _write_ordered(index: TableIndex, path: str | os.PathLike[str], order: Sequence[str],
                   progress: Progress | None) -> int:
    table, spans, positions = index.table, index.table.spans, index.nodes.positions
    assert len(order) == len(positions)
    chunks: list[Chunk] = [_source_chunk(table, start, end) for _, start, end in table.header]
    run: list[int] = []  # [start, end] of the span being extended
    for name in order:
        p = positions[name]
        if p < 0 or name in index.modified or name in index.rewired:
            if run:
                chunks.append(_source_chunk(table, run[0], run[1]))
                run = []
            chunks += _node_chunks(index, name)
        elif run and spans[3 * p] == run[1]:
            run[1] = spans[3 * p + 2]
        else:
            if run:
                chunks.append(_source_chunk(table, run[0], run[1]))
            run = [spans[3 * p], spans[3 * p + 2]]
    if run:
        chunks.append(_source_chunk(table, run[0], run[1]))
    with atomic_write(path, [table.path]) as fh:
        return write_chunks(chunks, fh, progress)


def _node_chunks(index: TableIndex, name: str) -> list[Chunk]:
    """A changed node's field: a node whose inputs alone changed (``rewired``) as its bytes in the file with
    the input fields swapped, when they are laid out as protobuf writers do (name, op, inputs first);
    anything else re-serialized from its message."""
    if name in index.rewired and name not in index.modified:
        table, spans, p = index.table, index.table.spans, index.nodes.positions[name]
        file_inputs = table.inputs[name]
        start, end = spans[3 * p + 1], spans[3 * p + 2]
        if end - start < _SLICE_ABOVE and _wirescan is not None:  # (a table comes from the scanner)
            return [_wirescan.with_inputs(table.data, start, end, index.inputs[name])]
        lead = _string_field(1, name) + _string_field(2, index.ops[name])
        head = lead + b"".join(_string_field(3, t) for t in file_inputs)
        if table.data[start:start + len(head)] == head:
            new_head = lead + b"".join(_string_field(3, t) for t in index.inputs[name])
            rest = end - start - len(head)
            return [len_field(1, len(new_head) + rest), new_head, _source_chunk(table, start + len(head), end)]
    return _node_field(index.nodes[name])


def _string_field(number: int, text: str) -> bytes:
    data = text.encode()
    return len_field(number, len(data)) + data


def _node_field(node: node_def_pb2.NodeDef) -> list[Chunk]:
    data = node.SerializeToString(deterministic=True)
    return [len_field(1, len(data)), data]


def _source_chunk(table: NodeTable, start: int, end: int) -> Chunk:
    if isinstance(table.data, mmap.mmap) and end - start >= _SLICE_ABOVE:
        return FileSlice(str(table.path), start, end - start)  # a kernel copy; the pages are never mapped in
    return memoryview(table.data)[start:end]
