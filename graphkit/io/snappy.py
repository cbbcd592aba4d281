"""Raw snappy decompression (format_description.txt of google/snappy), for old compressed table blocks.

Checkpoint index blocks are small, so plain Python is fast enough and adds no dependency.
"""

from __future__ import annotations

from graphkit.io.wire import WireError, read_varint


def decompress(data: bytes) -> bytes:
    """Decompress one raw (unframed) snappy buffer."""
    size, pos = read_varint(data, 0)
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > end:
                raise WireError("snappy literal runs past the end")
            out += data[pos:pos + length]
            pos += length
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            length = 1 + (tag >> 2)
            offset = int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
        else:
            length = 1 + (tag >> 2)
            offset = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise WireError("snappy copy offset out of range")
        start = len(out) - offset
        for i in range(length):  # copies may overlap their own output
            out.append(out[start + i])
    if len(out) != size:
        raise WireError(f"snappy block decompressed to {len(out)} bytes, header says {size}")
    return bytes(out)
