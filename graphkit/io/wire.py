"""Protobuf wire-format primitives (varints, tags), for the few places that read bytes by hand."""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not valid protobuf wire format (truncated or corrupt)."""


def read_varint(buf: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    """Decode a varint at ``pos``; return (value, position after it)."""
    limit = len(buf) if end is None else end
    result = 0
    shift = 0
    while True:
        if pos >= limit or shift > 63:
            raise WireError("truncated or invalid varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return encode_varint((field << 3) | wire_type)


def iter_fields(buf: bytes | memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (field number, wire type, field start, value start, value end) for each field in [start, end).

    For VARINT fields the value range is the varint's bytes; for LEN fields it is the payload.
    """
    pos = start
    while pos < end:
        field_start = pos
        key, pos = read_varint(buf, pos, end)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            _, value_end = read_varint(buf, pos, end)
        elif wire_type == LEN:
            length, pos = read_varint(buf, pos, end)
            value_end = pos + length
        elif wire_type == FIXED64:
            value_end = pos + 8
        elif wire_type == FIXED32:
            value_end = pos + 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
        if value_end > end:
            raise WireError("field runs past the end of its message")
        yield field, wire_type, field_start, pos, value_end
        pos = value_end

