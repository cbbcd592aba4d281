"""TensorFlow checkpoints read without TensorFlow: the V2 tensor bundle and the legacy V1 format.

V2 (docs/formats.md 1.3; tensor_bundle.cc): ``<prefix>.index`` is a table of BundleEntryProto keyed by
tensor name (header under key ``""``); ``<prefix>.data-NNNNN-of-MMMMM`` hold the raw bytes, read through
mmap. Partitioned tensors list their slices; each slice is an entry under an OrderedCode key.
V1 (docs/formats.md 1.3): one table per shard holding SavedTensorSlices messages.
Values are bit-identical to TensorFlow's RestoreV2.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import crc, dtypes, tensors
from graphkit.io.graph import FileSlice
from graphkit.io.sstable import Table
from graphkit.io.wire import WireError, read_varint
from graphkit.proto import (
    saved_tensor_slice_pb2,
    tensor_bundle_pb2,
    tensor_slice_pb2,
    trackable_object_graph_pb2,
)

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_CHUNK = 8 << 20
_V1_SHARD = re.compile(r"-\d{5}-of-\d{5}$")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the checkpoint keys it (a partitioned variable is one entry with its full shape)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    nbytes: int
    partitioned: bool = False


@dataclass(frozen=True)
class StoredPart:
    """A whole tensor's, or one slice's, stored bytes in a V2 data file (:meth:`BundleCheckpoint.stored`)."""

    slice: tensor_slice_pb2.TensorSliceProto | None  # None: the whole tensor
    shape: tuple[int, ...]  # the part's shape
    where: FileSlice
    crc32c: int  # masked, as stored


# ---- OrderedCode slice keys (saved_tensor_slice_util.cc, ordered_code.cc) ----------------------------

_HEADER_BITS = [(0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0), (0xFC, 0), (0xFE, 0),
                (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0)]


def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return bytes([len(body)]) + body


def _signed_num_increasing(value: int) -> bytes:
    x = ~value if value < 0 else value
    if x < 64:
        return bytes([(0x80 ^ value) & 0xFF])
    length = x.bit_length() // 7 + 1
    buf = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big"))  # sign-extended to 10 bytes
    begin = 10 - length
    buf[begin] ^= _HEADER_BITS[length][0]
    buf[begin + 1] ^= _HEADER_BITS[length][1]
    return bytes(buf[begin:])


def slice_key(name: str, extents: list[tuple[int, int]]) -> bytes:
    """The table key of one slice: EncodeTensorNameSlice(name, slice); length -1 means the full dim."""
    escaped = name.encode().replace(b"\xff", b"\xff\x00").replace(b"\x00", b"\x00\xff")
    out = bytearray(_num_increasing(0) + escaped + b"\x00\x01" + _num_increasing(len(extents)))
    for start, length in extents:
        out += _signed_num_increasing(start) + _signed_num_increasing(length)
    return bytes(out)


def slice_extents(proto: tensor_slice_pb2.TensorSliceProto, rank: int) -> list[tuple[int, int]]:
    out = [(int(e.start), int(e.length) if e.HasField("length") else -1) for e in proto.extent]
    return out + [(0, -1)] * (rank - len(out))


def _index(extents: list[tuple[int, int]], shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(s, s + (n if n >= 0 else dim)) for (s, n), dim in zip(extents, shape, strict=True))


class Checkpoint:
    """A checkpoint on disk. ``read`` decodes a tensor; ``raw`` gives zero-copy bytes for freezing."""

    def __init__(self, prefix: str | os.PathLike[str], version: int, files: list[Path]) -> None:
        self.prefix = Path(prefix)
        self.version = version
        self.files = files
        self._infos: dict[str, TensorInfo] = {}

    # -- listing
    def tensors(self) -> list[TensorInfo]:
        return sorted(self._infos.values(), key=lambda t: t.name)

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def info(self, name: str) -> TensorInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise GraphkitError(f"no tensor '{name}' in the checkpoint", self.prefix) from None

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self._infos.values())

    def read(self, name: str) -> np.ndarray:
        """The tensor's value (a copy), bit-identical to TF's RestoreV2."""
        raise NotImplementedError

    def raw(self, name: str) -> memoryview | None:
        """Zero-copy bytes of a whole numeric tensor, when the format allows it; else None."""
        return None

    def file_slice(self, name: str) -> FileSlice | None:
        """Where a whole numeric tensor's bytes lie on disk (CRC-checked in bounded chunks), else None."""
        return None

    def missing_files(self) -> list[Path]:
        return [f for f in self.files if not f.exists()]

    def same_value(self, a: str, b: str) -> bool:
        """Whether two tensors hold the same value (dtype, shape and bytes; by the stored CRC32C where the
        format records one, so multi-GB tensors are not read)."""
        ia, ib = self.info(a), self.info(b)
        if (ia.dtype, ia.shape) != (ib.dtype, ib.shape):
            return False
        import numpy as np

        return bool(np.array_equal(self.read(a), self.read(b)))

    def object_graph(self) -> trackable_object_graph_pb2.TrackableObjectGraph | None:
        """The TF2 object graph stored in the checkpoint, if any."""
        if OBJECT_GRAPH_KEY not in self._infos:
            return None
        value = self.read(OBJECT_GRAPH_KEY).reshape(-1)[0]
        return trackable_object_graph_pb2.TrackableObjectGraph.FromString(value)


class BundleCheckpoint(Checkpoint):
    """A V2 checkpoint: ``<prefix>.index`` + ``<prefix>.data-*``."""

    def __init__(self, prefix: str | os.PathLike[str], verify: bool = True) -> None:
        prefix = Path(prefix)
        index_path = Path(f"{prefix}.index")
        table = Table(index_path, verify=verify)
        entries = dict(table.items())
        self._verify = verify
        self._entries = entries
        if b"" not in entries:
            raise GraphkitError("checkpoint index has no header entry (not a tensor bundle?)", index_path)
        try:
            header = tensor_bundle_pb2.BundleHeaderProto.FromString(entries[b""])
        except Exception as exc:
            raise GraphkitError(f"corrupt checkpoint header ({exc})", index_path) from exc
        if header.version.min_consumer > 1:
            raise GraphkitError(
                f"checkpoint needs a reader of version >= {header.version.min_consumer}; graphkit reads version 1",
                index_path,
            )
        self.big_endian = header.endianness == tensor_bundle_pb2.BundleHeaderProto.BIG
        self.num_shards = max(1, header.num_shards)
        data = [Path(f"{prefix}.data-{i:05d}-of-{self.num_shards:05d}") for i in range(self.num_shards)]
        super().__init__(prefix, 2, [index_path, *data])
        self._maps: dict[int, mmap.mmap | bytes] = {}
        for key, value in entries.items():
            if not key or key[0] == 0:
                continue  # header and slice entries
            try:
                entry = tensor_bundle_pb2.BundleEntryProto.FromString(value)
                name = key.decode("utf-8")
            except Exception as exc:
                raise GraphkitError(f"corrupt checkpoint entry {key!r} ({exc})", index_path) from exc
            shape = tensors.shape_of(entry.shape) or ()
            if entry.slices:
                size = sum(self._slice_entry(name, s, len(shape)).size for s in entry.slices)
            else:
                size = entry.size
            self._infos[name] = TensorInfo(name, entry.dtype, shape, size, bool(entry.slices))

    def _entry(self, name: str) -> tensor_bundle_pb2.BundleEntryProto:
        self.info(name)
        return tensor_bundle_pb2.BundleEntryProto.FromString(self._entries[name.encode()])

    def stored(self, name: str) -> list[StoredPart]:
        """Where a tensor's stored bytes lie (any dtype, as the bundle keeps them): one part for a whole
        tensor, one per slice for a partitioned one -- what :mod:`graphkit.io.bundle` copies."""
        entry = self._entry(name)
        protos: list[tensor_slice_pb2.TensorSliceProto | None] = list(entry.slices) or [None]
        parts = []
        for proto in protos:
            part = entry if proto is None else self._slice_entry(name, proto, len(self.info(name).shape))
            self._bytes(part, name)  # bounds and shard checks
            where = FileSlice(str(self.files[1 + part.shard_id]), part.offset, part.size)
            parts.append(StoredPart(proto, tuple(d.size for d in part.shape.dim), where, part.crc32c))
        return parts

    def same_value(self, a: str, b: str) -> bool:
        ia, ib = self.info(a), self.info(b)
        if ia.partitioned or ib.partitioned:
            return super().same_value(a, b)
        ea, eb = self._entry(a), self._entry(b)
        return (ia.dtype, ia.shape, ea.size, ea.crc32c) == (ib.dtype, ib.shape, eb.size, eb.crc32c)

    def _slice_entry(
        self, name: str, proto: tensor_slice_pb2.TensorSliceProto, rank: int
    ) -> tensor_bundle_pb2.BundleEntryProto:
        key = slice_key(name, slice_extents(proto, rank))
        if key not in self._entries:
            raise GraphkitError(f"tensor '{name}': a slice listed in the index is missing (corrupt index)", self.prefix)
        return tensor_bundle_pb2.BundleEntryProto.FromString(self._entries[key])

    def _shard(self, shard_id: int) -> mmap.mmap | bytes:
        if shard_id not in self._maps:
            if not 0 <= shard_id < self.num_shards:
                raise GraphkitError(f"entry points to data shard {shard_id} of {self.num_shards}", self.prefix)
            path = self.files[1 + shard_id]
            try:
                with open(path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    self._maps[shard_id] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            except FileNotFoundError:
                raise GraphkitError(
                    f"data shard {path.name} is missing; copy all {self.num_shards} .data-* files with the .index",
                    path,
                ) from None
            except OSError as exc:  # a directory, no permission, an I/O error
                raise GraphkitError(f"cannot read data shard {path.name}: {exc.strerror or exc}", path) from None
        return self._maps[shard_id]

    def _bytes(self, entry: tensor_bundle_pb2.BundleEntryProto, name: str) -> memoryview:
        buf = self._shard(entry.shard_id)
        start, end = entry.offset, entry.offset + entry.size
        if end > len(buf):
            raise GraphkitError(
                f"tensor '{name}' lies past the end of data shard {entry.shard_id} (truncated file?)", self.prefix
            )
        return memoryview(buf)[start:end]

    def raw(self, name: str) -> memoryview | None:
        """Zero-copy little-endian bytes of a whole, numeric tensor (CRC-checked); None if not possible."""
        if not self._copyable(name):
            return None
        entry = self._entry(name)
        view = self._bytes(entry, name)
        self._check_crc(view, entry, name)
        return view

    def file_slice(self, name: str) -> FileSlice | None:
        if not self._copyable(name):
            return None
        entry = self._entry(name)
        self._bytes(entry, name)  # bounds and shard checks
        part = FileSlice(str(self.files[1 + entry.shard_id]), entry.offset, entry.size)
        if self._verify:
            running = 0
            with open(part.path, "rb") as fh:
                for start in range(0, part.length, _CHUNK):
                    running = crc.crc32c(os.pread(fh.fileno(), min(_CHUNK, part.length - start),
                                                  part.offset + start), running)
            if crc.unmask(entry.crc32c) != running:
                raise GraphkitError(f"CRC mismatch in tensor '{name}': the data file is corrupt", self.prefix)
        return part

    def _copyable(self, name: str) -> bool:
        """A whole, little-endian, fixed-size tensor: its file bytes are its tensor_content."""
        info = self.info(name)
        return not (info.partitioned or self.big_endian
                    or dtypes.base(info.dtype) in (dtypes.DT_STRING, dtypes.DT_VARIANT))

    def _check_crc(self, view: memoryview, entry: tensor_bundle_pb2.BundleEntryProto, name: str) -> None:
        if self._verify and crc.unmask(entry.crc32c) != crc.crc32c(view):
            raise GraphkitError(f"CRC mismatch in tensor '{name}': the data file is corrupt", self.prefix)

    def read(self, name: str) -> np.ndarray:
        info = self.info(name)
        entry = self._entry(name)
        if not entry.slices:
            return self._decode(entry, info.shape, name)
        np_dtype = dtypes.to_numpy(info.dtype)
        full = np.empty(info.shape, dtype=np_dtype)
        for proto in entry.slices:
            extents = slice_extents(proto, len(info.shape))
            index = _index(extents, info.shape)
            part_shape = tuple(s.stop - s.start for s in index)
            full[index] = self._decode(self._slice_entry(name, proto, len(info.shape)), part_shape, name)
        return full

    def _decode(self, entry: tensor_bundle_pb2.BundleEntryProto, shape: tuple[int, ...], name: str) -> np.ndarray:
        code = dtypes.base(entry.dtype)
        if code == dtypes.DT_VARIANT:
            raise GraphkitError(f"tensor '{name}' is a DT_VARIANT (opaque TF-internal state); cannot decode it")
        view = self._bytes(entry, name)
        if code == dtypes.DT_STRING:
            return self._decode_strings(view, shape, name, entry.crc32c)
        self._check_crc(view, entry, name)
        np_dtype = dtypes.to_numpy(code)
        count = math.prod(shape)
        if len(view) != count * np_dtype.itemsize:
            raise GraphkitError(
                f"tensor '{name}' has {len(view)} bytes but shape {list(shape)} needs {count * np_dtype.itemsize}",
                self.prefix,
            )
        array = np.frombuffer(view, dtype=np_dtype).reshape(shape)
        return array.byteswap() if self.big_endian else array.copy()

    def _decode_strings(self, view: memoryview, shape: tuple[int, ...], name: str, entry_crc: int) -> np.ndarray:
        """[varint len]*N, masked crc32c of the lengths, then the bytes (tensor_bundle.cc ReadStringTensor).

        Both checksums run over each length as a little-endian uint32 (uint64 if larger), not the varints;
        the entry's checksum goes on over the 4 stored checksum bytes and then the string bytes.
        """
        buf = bytes(view)
        count = math.prod(shape)
        lengths = []
        pos = 0
        running = 0
        try:
            for _ in range(count):
                length, pos = read_varint(buf, pos)
                lengths.append(length)
                running = crc.crc32c(struct.pack("<I" if length <= 0xFFFFFFFF else "<Q", length), running)
        except WireError as exc:
            raise GraphkitError(f"tensor '{name}': corrupt string lengths ({exc})", self.prefix) from exc
        if pos + 4 > len(buf):
            raise GraphkitError(f"tensor '{name}': string data is truncated", self.prefix)
        (stored,) = struct.unpack_from("<I", buf, pos)
        check = self._verify and not self.big_endian
        if check and crc.unmask(stored) != running:
            raise GraphkitError(f"CRC mismatch in the string lengths of '{name}': the data file is corrupt",
                                self.prefix)
        running = crc.crc32c(buf[pos:pos + 4], running)
        pos += 4
        if check and crc.unmask(entry_crc) != crc.crc32c(buf[pos:], running):
            raise GraphkitError(f"CRC mismatch in tensor '{name}': the data file is corrupt", self.prefix)
        out = np.empty(count, dtype=object)
        for i, length in enumerate(lengths):
            out[i] = buf[pos:pos + length]
            pos += length
        if pos != len(buf):
            raise GraphkitError(f"tensor '{name}': string data does not match its lengths (corrupt)", self.prefix)
        return out.reshape(shape)


class V1Checkpoint(Checkpoint):
    """A legacy V1 checkpoint ("SavedTensorSlices"): one table per shard."""

    def __init__(self, prefix: str | os.PathLike[str], files: list[Path], verify: bool = True) -> None:
        super().__init__(prefix, 1, files)
        self._slices: dict[str, list[tuple[bytes, tuple[slice, ...], tuple[int, ...]]]] = {}
        self._data: dict[bytes, bytes] = {}
        for path in files:
            for key, value in Table(path, verify=verify).items():
                try:
                    saved = saved_tensor_slice_pb2.SavedTensorSlices.FromString(value)
                except Exception as exc:
                    raise GraphkitError(f"corrupt V1 checkpoint entry ({exc})", path) from exc
                if key:
                    self._data[key] = value
                    continue
                for meta in saved.meta.tensor:
                    shape = tensors.shape_of(meta.shape) or ()
                    parts = self._slices.setdefault(meta.name, [])
                    for proto in meta.slice:
                        extents = slice_extents(proto, len(shape))
                        index = _index(extents, shape)
                        parts.append((slice_key(meta.name, extents), index, tuple(s.stop - s.start for s in index)))
                    itemsize = dtypes.to_numpy(meta.type).itemsize if dtypes.base(meta.type) != dtypes.DT_STRING else 0
                    self._infos[meta.name] = TensorInfo(
                        meta.name, meta.type, shape, math.prod(shape) * itemsize, len(meta.slice) > 1
                    )

    def read(self, name: str) -> np.ndarray:
        info = self.info(name)
        full = np.empty(info.shape, dtype=dtypes.to_numpy(info.dtype))
        for key, index, part_shape in self._slices[name]:
            if key not in self._data:
                raise GraphkitError(f"tensor '{name}': slice data missing from the V1 checkpoint", self.prefix)
            proto = saved_tensor_slice_pb2.SavedTensorSlices.FromString(self._data[key]).data.data
            proto.dtype = info.dtype  # type: ignore[assignment]
            proto.tensor_shape.CopyFrom(tensors.shape_proto(part_shape))
            full[index] = tensors.to_numpy(proto)
        return full

    def raw(self, name: str) -> memoryview | None:
        return None


def open_checkpoint(prefix: str | os.PathLike[str], verify: bool = True) -> Checkpoint:
    """Open the checkpoint at ``prefix`` (V2 if ``<prefix>.index`` exists, else V1 file or shards)."""
    prefix = Path(prefix)
    if Path(f"{prefix}.index").is_file():
        return BundleCheckpoint(prefix, verify)
    shards = v1_shards(prefix)
    if shards:
        return V1Checkpoint(prefix, shards, verify)
    raise GraphkitError("no checkpoint at this prefix (no .index file, no V1 checkpoint file)", prefix)


def v1_shards(prefix: Path) -> list[Path]:
    """Files of a V1 checkpoint at ``prefix``: the file itself or ``<prefix>-NNNNN-of-MMMMM`` shards."""
    from graphkit.io.sstable import has_table_magic

    if prefix.is_file() and has_table_magic(prefix):
        return [prefix]
    if _V1_SHARD.search(prefix.name) and prefix.is_file():
        base = prefix.name[: -len("-00000-of-00000")]
        prefix = prefix.with_name(base)
    shards = sorted(prefix.parent.glob(glob_escape(prefix.name) + "-?????-of-?????"))
    return [s for s in shards if has_table_magic(s)]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
