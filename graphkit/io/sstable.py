"""Reader for TensorFlow's LevelDB-style table, the container of checkpoint ``.index`` files.

Layout (docs/formats.md 1.2; tsl/lib/io/format.cc, block.cc): data blocks, an (empty) metaindex block, an index
block, then a 48-byte footer ending in the table magic. Every block carries a 5-byte trailer: a type byte
(0 raw, 1 snappy) and the masked CRC32C of contents + type.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from graphkit.errors import GraphkitError
from graphkit.io import crc, snappy
from graphkit.io.wire import WireError, read_varint

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5


def has_table_magic(path: str | os.PathLike[str]) -> bool:
    """True if the file ends with the table magic number."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() < FOOTER_SIZE:
                return False
            fh.seek(-8, os.SEEK_END)
            lo, hi = struct.unpack("<II", fh.read(8))
    except OSError:
        return False
    return (hi << 32 | lo) == MAGIC


class Table:
    """An immutable sorted key/value table read fully from a (small) index file."""

    def __init__(self, path: str | os.PathLike[str], verify: bool = True) -> None:
        self.path = Path(path)
        try:
            self._buf = self.path.read_bytes()
        except OSError as exc:
            raise GraphkitError(f"cannot read: {exc.strerror}", path) from exc
        self._verify = verify
        buf = self._buf
        if len(buf) < FOOTER_SIZE:
            raise GraphkitError(f"too short to be a checkpoint table ({len(buf)} bytes; truncated?)", path)
        lo, hi = struct.unpack_from("<II", buf, len(buf) - 8)
        if (hi << 32 | lo) != MAGIC:
            raise GraphkitError("not a TensorFlow table: bad footer magic (truncated or not a checkpoint index)", path)
        footer = len(buf) - FOOTER_SIZE
        try:
            _meta_off, pos = read_varint(buf, footer)
            _meta_size, pos = read_varint(buf, pos)
            self._index_off, pos = read_varint(buf, pos)
            self._index_size, pos = read_varint(buf, pos)
        except WireError as exc:
            raise GraphkitError(f"corrupt table footer ({exc})", path) from exc

    def _block(self, offset: int, size: int) -> bytes:
        buf = self._buf
        end = offset + size
        if offset < 0 or end + TRAILER_SIZE > len(buf):
            raise GraphkitError(f"block at offset {offset} runs past the end of the file (truncated?)", self.path)
        contents = buf[offset:end]
        block_type = buf[end]
        if self._verify:
            (stored,) = struct.unpack_from("<I", buf, end + 1)
            actual = crc.crc32c(bytes([block_type]), crc.crc32c(contents))
            if crc.unmask(stored) != actual:
                raise GraphkitError(f"CRC mismatch in table block at offset {offset}: the file is corrupt", self.path)
        if block_type == 0:
            return contents
        if block_type == 1:
            return self._snappy(contents, offset)
        raise GraphkitError(f"bad block type {block_type} at offset {offset}", self.path)

    def _snappy(self, contents: bytes, offset: int) -> bytes:
        try:
            return snappy.decompress(contents)
        except (WireError, IndexError) as exc:
            raise GraphkitError(f"corrupt snappy-compressed block at offset {offset} ({exc})", self.path) from exc

    def _entries(self, block: bytes) -> Iterator[tuple[bytes, bytes]]:
        if len(block) < 4:
            raise GraphkitError("corrupt table block (too short)", self.path)
        (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
        limit = len(block) - 4 - 4 * num_restarts
        if limit < 0:
            raise GraphkitError("corrupt table block (bad restart count)", self.path)
        pos = 0
        key = b""
        try:
            while pos < limit:
                shared, pos = read_varint(block, pos, limit)
                unshared, pos = read_varint(block, pos, limit)
                value_len, pos = read_varint(block, pos, limit)
                if shared > len(key) or pos + unshared + value_len > limit:
                    raise WireError("entry runs past its block")
                key = key[:shared] + block[pos:pos + unshared]
                pos += unshared
                yield key, block[pos:pos + value_len]
                pos += value_len
        except WireError as exc:
            raise GraphkitError(f"corrupt table block ({exc})", self.path) from exc

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) pairs in key order."""
        index = self._block(self._index_off, self._index_size)
        for _, handle in self._entries(index):
            try:
                offset, pos = read_varint(handle, 0)
                size, _ = read_varint(handle, pos)
            except WireError as exc:
                raise GraphkitError(f"corrupt block handle in table index ({exc})", self.path) from exc
            yield from self._entries(self._block(offset, size))
