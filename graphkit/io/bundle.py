"""Writing TensorFlow's V2 checkpoint (the tensor bundle) without TensorFlow: ``<prefix>.index``, a
LevelDB-style table of BundleEntryProtos, and ``<prefix>.data-00000-of-00001`` (docs/formats.md 1.2, 1.3;
``tsl/lib/io/table_builder.cc``, ``block_builder.cc``, ``core/util/tensor_bundle/tensor_bundle.cc``).

A tensor is copied from a source checkpoint's data file as its stored bytes -- any dtype, strings included --
in chunks, its CRC32C checked on the way (a damaged source is refused, nothing written), or given as new
values (:func:`encoded`, TF's CRC rules). A partitioned variable is an entry listing its slices plus one
entry per slice under an OrderedCode key (tensor_bundle.cc AddSlice). Everything goes to one data shard.
Both files are written beside the target under temporary names and renamed into place, index last, so a
failure leaves nothing; neither may be an input.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import crc, dtypes
from graphkit.io.checkpoint import BundleCheckpoint, Checkpoint, slice_extents, slice_key
from graphkit.io.graph import FileSlice
from graphkit.io.save import check_output
from graphkit.io.shapes import shape_proto
from graphkit.io.sstable import MAGIC
from graphkit.io.wire import encode_varint
from graphkit.proto import tensor_bundle_pb2, tensor_slice_pb2

BLOCK_SIZE = 262144  # tsl::table::Options::block_size, as TF's BundleWriter uses it
RESTART_INTERVAL = 16  # Options::block_restart_interval (the index block restarts at every entry)
_CHUNK = 8 << 20


@dataclass
class Part:
    """A whole tensor's stored bytes, or one slice's: a byte range of a source data file (with the source
    entry's masked CRC32C, which the copy is checked against), or a function that makes the bytes when the
    part is written (a converted tensor is held in memory only while it is written)."""

    shape: tuple[int, ...]
    data: FileSlice | Callable[[], tuple[bytes, int]]  # a range, or a function giving bytes and masked CRC
    crc32c: int | None = None  # masked; required for a FileSlice
    bytes_crc: bool = True  # the CRC covers the stored bytes as they are (not so for strings: see copied)
    slice: tensor_slice_pb2.TensorSliceProto | None = None  # None: the whole tensor


@dataclass
class BundleTensor:
    """One tensor to write under ``name``: one whole :class:`Part`, or its slices (a partitioned
    variable: the entry under ``name`` lists them, each is stored under its OrderedCode key)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    parts: list[Part]

    @classmethod
    def of(cls, name: str, array: np.ndarray, dtype: int | None = None) -> BundleTensor:
        """A tensor of new values (``dtype``: a DT_* code; default the array's own; strings: DT_STRING)."""
        code = dtype if dtype is not None else (dtypes.DT_STRING if array.dtype == object else
                                                dtypes.from_numpy(array.dtype))
        return cls(name, code, tuple(array.shape), [Part(tuple(array.shape), lambda: encoded(array, code))])


def copied(ckpt: Checkpoint, name: str, new_name: str | None = None) -> BundleTensor:
    """Tensor ``name`` of a checkpoint, to be written under ``new_name`` (default: the same): a V2
    checkpoint's stored bytes (slices kept as slices), or -- V1 and big-endian checkpoints -- its values
    re-encoded (a V1 partitioned tensor is written whole; TF reads slices of a whole tensor)."""
    info = ckpt.info(name)
    target = new_name or name
    if not isinstance(ckpt, BundleCheckpoint) or ckpt.big_endian:
        return BundleTensor(target, info.dtype, info.shape, [Part(info.shape, lambda: encoded(ckpt.read(name),
                                                                                              info.dtype))])
    code = dtypes.base(info.dtype)
    if code == dtypes.DT_STRING:
        ckpt.read(name)  # a string tensor's CRC covers its lengths and bytes, not the stored varints: the
        # reader checks it (TF's rule, tensor_bundle.cc WriteStringTensor); a variant's TF checks on restore
    plain = code not in (dtypes.DT_STRING, dtypes.DT_VARIANT)
    parts = [Part(p.shape, p.where, p.crc32c, plain, p.slice) for p in ckpt.stored(name)]
    return BundleTensor(target, info.dtype, info.shape, parts)


def encoded(array: np.ndarray, dtype: int) -> tuple[bytes, int]:
    """A tensor's bytes as a bundle stores them, and their masked CRC32C as TF computes it: little-endian
    values; strings in TF's layout -- varint lengths, the masked CRC32C of the lengths, the bytes -- whose
    CRC runs over each length as a fixed-width integer, the stored length checksum, then the bytes
    (tensor_bundle.cc WriteStringTensor)."""
    code = dtypes.base(dtype)
    if code == dtypes.DT_VARIANT:
        raise GraphkitError("a DT_VARIANT tensor cannot be re-encoded (opaque TF-internal state)")
    if code != dtypes.DT_STRING:
        data = np.ascontiguousarray(array, dtype=dtypes.to_numpy(code).newbyteorder("<")).tobytes()
        return data, crc.mask(crc.crc32c(data))
    items = [v.encode() if isinstance(v, str) else bytes(v) for v in np.asarray(array, dtype=object).ravel()]
    running = 0
    for v in items:
        running = crc.crc32c(struct.pack("<I" if len(v) <= 0xFFFFFFFF else "<Q", len(v)), running)
    stored = struct.pack("<I", crc.mask(running))
    body = b"".join(items)
    running = crc.crc32c(body, crc.crc32c(stored, running))
    return b"".join(encode_varint(len(v)) for v in items) + stored + body, crc.mask(running)


def write_bundle(prefix: str | os.PathLike[str], tensors: Iterable[BundleTensor], *,
                 inputs: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Write a V2 checkpoint at ``prefix`` holding ``tensors`` (keys sorted, as TF's table requires).
    Returns the files written. ``inputs``: files the output may not overwrite (the source checkpoint's)."""
    prefix = Path(prefix)
    items = sorted(tensors, key=lambda t: t.name.encode())
    names = [t.name for t in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GraphkitError(f"two tensors would be named {', '.join(repr(n) for n in twice)}", prefix)
    if any(not t.name for t in items):
        raise GraphkitError("a tensor needs a non-empty name (the empty key is the bundle header)", prefix)
    index_path, data_path = Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")
    for path in (index_path, data_path):
        check_output(path, list(inputs))
    folder = index_path.parent
    temps: list[Path] = []
    try:
        entries: list[tuple[bytes, bytes]] = []
        fd, data_tmp = tempfile.mkstemp(dir=folder, prefix=f".{data_path.name}.", suffix=".tmp")
        temps.append(Path(data_tmp))
        with os.fdopen(fd, "wb") as out:
            offset = 0
            for tensor in items:
                whole = tensor_bundle_pb2.BundleEntryProto()
                whole.dtype = tensor.dtype  # type: ignore[assignment]
                whole.shape.CopyFrom(shape_proto(tensor.shape))
                for part in tensor.parts:
                    size, masked = _write_part(out, tensor, part, prefix)
                    entry = whole if part.slice is None else tensor_bundle_pb2.BundleEntryProto()
                    entry.shard_id, entry.offset, entry.size, entry.crc32c = 0, offset, size, masked
                    offset += size
                    if part.slice is not None:
                        entry.dtype = tensor.dtype  # type: ignore[assignment]
                        entry.shape.CopyFrom(shape_proto(part.shape))
                        whole.slices.append(part.slice)
                        entries.append((slice_key(tensor.name, slice_extents(part.slice, len(tensor.shape))),
                                        entry.SerializeToString(deterministic=True)))
                entries.append((tensor.name.encode(), whole.SerializeToString(deterministic=True)))
            out.flush()
            os.fsync(out.fileno())
        entries.sort(key=lambda kv: kv[0])  # slice keys (a 0 byte first) sort before every name
        header = tensor_bundle_pb2.BundleHeaderProto(num_shards=1)
        header.version.producer = 1
        table = table_bytes([(b"", header.SerializeToString(deterministic=True)), *entries])
        fd, index_tmp = tempfile.mkstemp(dir=folder, prefix=f".{index_path.name}.", suffix=".tmp")
        temps.append(Path(index_tmp))
        with os.fdopen(fd, "wb") as out:
            out.write(table)
            out.flush()
            os.fsync(out.fileno())
        for tmp in temps:
            os.chmod(tmp, 0o644)
        os.replace(data_tmp, data_path)
        temps.remove(Path(data_tmp))
        os.replace(index_tmp, index_path)  # last: TF opens a checkpoint by its index
        temps.remove(Path(index_tmp))
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    return [index_path, data_path]


def _write_part(out: IO[bytes], tensor: BundleTensor, part: Part, prefix: Path) -> tuple[int, int]:
    """Append a part's stored bytes; returns (size, masked CRC32C). A copied range is checked against the
    source's CRC as it streams through."""
    write = out.write
    if isinstance(part.data, FileSlice):
        if part.crc32c is None:
            raise GraphkitError(f"tensor '{tensor.name}': a copied range needs its source CRC", prefix)
        running = 0
        where = part.data
        with open(where.path, "rb") as src:
            for start in range(0, where.length, _CHUNK):
                chunk = os.pread(src.fileno(), min(_CHUNK, where.length - start), where.offset + start)
                if not chunk:
                    raise GraphkitError(f"tensor '{tensor.name}' lies past the end of its data file (truncated?)",
                                        where.path)
                running = crc.crc32c(chunk, running)
                write(chunk)
        if part.bytes_crc and crc.mask(running) != part.crc32c:
            raise GraphkitError(f"CRC mismatch in tensor '{tensor.name}': the source data file is corrupt; "
                                "nothing was written", where.path)
        return where.length, part.crc32c
    data, masked = part.data()
    write(data)
    return len(data), masked


def table_bytes(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB-style table of sorted (key, value) pairs, uncompressed, as TF's TableBuilder writes it:
    data blocks of about :data:`BLOCK_SIZE`, an empty metaindex block, an index block with each data block's
    last key, and the 48-byte footer."""
    out = bytearray()
    index: list[tuple[bytes, bytes]] = []
    block = _Block(RESTART_INTERVAL)
    for key, value in items:
        block.add(key, value)
        if block.size() >= BLOCK_SIZE:
            index.append((block.last, _handle(*_append_block(out, block.finish()))))
            block = _Block(RESTART_INTERVAL)
    if block.count:
        index.append((block.last, _handle(*_append_block(out, block.finish()))))
    meta = _append_block(out, _Block(RESTART_INTERVAL).finish())
    index_block = _Block(1)
    for key, handle in index:
        index_block.add(key, handle)
    index_handle = _append_block(out, index_block.finish())
    footer = _handle(*meta) + _handle(*index_handle)
    out += footer + bytes(40 - len(footer)) + struct.pack("<II", MAGIC & 0xFFFFFFFF, MAGIC >> 32)
    return bytes(out)


class _Block:
    """LevelDB's BlockBuilder: prefix-compressed entries, a restart point every ``interval`` entries."""

    def __init__(self, interval: int) -> None:
        self.interval, self.buf, self.restarts, self.count, self.last = interval, bytearray(), [0], 0, b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count % self.interval == 0:
            if self.count:
                self.restarts.append(len(self.buf))
        else:
            limit = min(len(key), len(self.last))
            while shared < limit and key[shared] == self.last[shared]:
                shared += 1
        self.buf += encode_varint(shared) + encode_varint(len(key) - shared) + encode_varint(len(value))
        self.buf += key[shared:] + value
        self.last, self.count = key, self.count + 1

    def size(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) + struct.pack(
            "<I", len(self.restarts))


def _append_block(out: bytearray, contents: bytes) -> tuple[int, int]:
    """Append a block and its trailer (type 0, masked CRC32C of contents + type); returns its handle."""
    offset = len(out)
    out += contents + b"\x00" + struct.pack("<I", crc.mask(crc.crc32c(contents + b"\x00")))
    return offset, len(contents)


def _handle(offset: int, size: int) -> bytes:
    return encode_varint(offset) + encode_varint(size)
