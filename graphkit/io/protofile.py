"""Binary protobuf files too large to copy: parse them with weight bytes left in the mmapped file.

Protobuf parses a message only from one contiguous buffer, so a 1 GB frozen graph costs 1 GB to read and
~2 GB to parse. Here a short walk over the wire format finds every Const's ``tensor_content`` above
``LARGE`` bytes (SavedModel -> MetaGraphDef -> GraphDef -> NodeDef -> attr "value" -> TensorProto), leaves
it out of the bytes handed to protobuf (re-encoding the enclosing lengths), and returns a zero-copy view
of it instead. Small nodes are copied as they are, in runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphkit.io.wire import LEN, encode_varint, iter_fields, tag

LARGE = 1 << 16
_PAYLOAD = "payload"
_SCHEMA: dict[str, dict[int, str]] = {
    "SavedModel": {2: "MetaGraphDef"},
    "MetaGraphDef": {2: "GraphDef"},
    "GraphDef": {1: "NodeDef"},
    "NodeDef": {5: "AttrEntry"},
    "AttrEntry": {2: "AttrValue"},
    "AttrValue": {8: "TensorProto"},
    "TensorProto": {4: _PAYLOAD},
}


@dataclass
class Stripped:
    """Bytes for protobuf, plus payloads: (graph ordinal, node ordinal) -> (offset, length) of the
    tensor_content bytes in the buffer."""

    data: bytes
    payloads: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)


class _Walk:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.graph = -1
        self.node = -1
        self.payloads: dict[tuple[int, int], tuple[int, int]] = {}

    def strip(self, start: int, end: int, kind: str) -> list[bytes | memoryview]:
        buf = self.buf
        schema = _SCHEMA[kind]
        out: list[bytes | memoryview] = []
        run = start
        if kind == "GraphDef":
            self.graph += 1
            self.node = -1
        attr_key = None
        for number, wire_type, field_start, value_start, value_end in iter_fields(buf, start, end):
            if kind == "GraphDef" and number == 1:
                self.node += 1
            if kind == "AttrEntry" and number == 1:
                attr_key = bytes(buf[value_start:value_end])
            child = schema.get(number) if wire_type == LEN else None
            if child is None or value_end - value_start < LARGE or (kind == "AttrEntry" and attr_key != b"value"):
                continue
            if field_start > run:
                out.append(buf[run:field_start])
            run = value_end
            if child == _PAYLOAD:
                self.payloads[(self.graph, self.node)] = (value_start, value_end - value_start)
                continue
            inner = self.strip(value_start, value_end, child)
            out.append(tag(number, LEN) + encode_varint(sum(len(c) for c in inner)))
            out.extend(inner)
        if end > run:
            out.append(buf[run:end])
        return out


def strip_payloads(buf: memoryview, kind: str) -> Stripped:
    """Walk ``buf`` (a serialized ``kind``: SavedModel, MetaGraphDef or GraphDef) and strip large payloads."""
    walk = _Walk(buf)
    chunks = walk.strip(0, len(buf), kind)
    return Stripped(b"".join(chunks), walk.payloads)
