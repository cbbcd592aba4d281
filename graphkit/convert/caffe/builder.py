"""The TF graph a Caffe net becomes: a GraphDef builder, and the blobs as tensors with a layout.

A blob is stored in TF with its axes permuted: ``stored = caffe_value.transpose(perm)``. 4-D blobs made by
spatial layers are NHWC (perm (0, 2, 3, 1)); layout-agnostic layers keep the perm they get; layers that need
Caffe's axis order (Flatten, Reshape) transpose first; Permute only changes the perm. So the body has no
Transpose except where Caffe's own order is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.graph import FileSlice, unique_name, valid_node_name
from graphkit.io.save import Spill
from graphkit.io.tensors import from_numpy, shape_proto
from graphkit.proto import graph_pb2, node_def_pb2

NHWC = (0, 2, 3, 1)
FLOAT = dtypes.DT_FLOAT
INT32 = dtypes.DT_INT32


@dataclass(frozen=True)
class Tensor:
    """A Caffe blob in the TF graph: the TF tensor name, the blob's Caffe shape, how its axes are stored."""

    ref: str
    shape: tuple[int, ...]
    perm: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[p] for p in self.perm)

    def stored_axis(self, caffe_axis: int) -> int:
        """Where Caffe axis ``caffe_axis`` (negative allowed) lives in the stored tensor."""
        axis = caffe_axis % self.rank
        return self.perm.index(axis)


def identity_perm(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


LARGE = 1 << 16  # constants above this many bytes go to the spill file, not into the proto


class Builder:
    """Appends NodeDefs; names are unique (``name``, ``name_1``...).

    With a ``spill`` file, large constants are written there as they are made (``external`` maps the node
    to its bytes) so weights are never all in memory; ``shape_only`` records constants' shapes alone (shape
    inference for inspect)."""

    def __init__(self, spill: Spill | None = None, shape_only: bool = False) -> None:
        self.graph = graph_pb2.GraphDef()
        self.graph.versions.producer = 1700
        self.names: set[str] = set()
        self.weight_bytes = 0
        self.spill, self.shape_only = spill, shape_only
        self.external: dict[str, FileSlice] = {}
        self._layouts: dict[tuple[str, tuple[int, ...]], str] = {}

    def unique(self, name: str) -> str:
        """A new node's name: Caffe allows any layer or blob name, TF does not (see valid_node_name)."""
        return unique_name(valid_node_name(name), self.names)

    def op(self, name: str, op: str, inputs: Sequence[str], dtype: int | None = FLOAT, **attrs: object) -> str:
        node = self.graph.node.add(name=self.unique(name), op=op)
        node.input.extend(inputs)
        if dtype is not None:
            node.attr["T"].type = dtype  # type: ignore[assignment]
        for key, value in attrs.items():
            _set_attr(node, key, value)
        return node.name

    def const(self, name: str, value: np.ndarray | float | int | Sequence[int]) -> str:
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        if array.dtype == np.int64:
            array = array.astype(np.int32)
        if self.shape_only or (self.spill is not None and array.nbytes > LARGE):
            return self.const_blocks(name, array.shape, [array], array.dtype)
        node = self.graph.node.add(name=self.unique(name), op="Const")
        tensor = from_numpy(array if array.flags.c_contiguous else array.copy(order="C"))
        node.attr["dtype"].type = tensor.dtype
        node.attr["value"].tensor.CopyFrom(tensor)
        self.weight_bytes += array.nbytes
        return node.name

    def const_blocks(self, name: str, shape: Sequence[int], blocks: Iterable[np.ndarray],
                     dtype: np.dtype | type = np.float32) -> str:
        """A Const of ``shape`` whose row-major bytes are ``blocks`` in order (made one at a time)."""
        node = self.graph.node.add(name=self.unique(name), op="Const")
        code = dtypes.from_numpy(np.dtype(dtype))
        node.attr["dtype"].type = code  # type: ignore[assignment]
        tensor = node.attr["value"].tensor
        tensor.dtype = code  # type: ignore[assignment]
        tensor.tensor_shape.CopyFrom(shape_proto(tuple(shape)))
        if self.shape_only:
            return node.name
        parts: Iterator[np.ndarray] = (np.ascontiguousarray(block, dtype=dtype) for block in blocks)
        if self.spill is not None:
            piece = self.spill.write(part.data.cast("B") for part in parts)
            self.external[node.name] = piece
            self.weight_bytes += len(piece)
        else:
            data = b"".join(part.tobytes() for part in parts)
            tensor.tensor_content = data
            self.weight_bytes += len(data)
        return node.name

    def placeholder(self, name: str, shape: Sequence[int]) -> str:
        if valid_node_name(name) in self.names:
            raise GraphkitError(f"input blob '{name}' clashes with another node name")
        node = self.graph.node.add(name=self.unique(name), op="Placeholder")
        node.attr["dtype"].type = FLOAT  # type: ignore[assignment]
        for d in shape:
            node.attr["shape"].shape.dim.add().size = d
        return name

    def transpose(self, name: str, x: str, perm: Sequence[int]) -> str:
        return self.op(name, "Transpose", [x, self.const(f"{name}/perm", np.array(perm, np.int32))],
                       Tperm=INT32)

    def to_perm(self, t: Tensor, perm: tuple[int, ...], name: str) -> Tensor:
        """``t`` stored with ``perm`` (a Transpose when it differs)."""
        if t.perm == perm:
            return t
        key = (t.ref, perm)
        if key not in self._layouts:  # one Transpose per tensor and layout, however many layers need it
            # stored = caffe.T(t.perm); want caffe.T(perm) = stored.T(q) with t.perm[q[i]] = perm[i]
            q = [t.perm.index(p) for p in perm]
            self._layouts[key] = self.transpose(name, t.ref, q)
        return Tensor(self._layouts[key], t.shape, perm)

    def reshape(self, name: str, x: str, shape: Sequence[int]) -> str:
        return self.op(name, "Reshape", [x, self.const(f"{name}/shape", np.array(shape, np.int32))], Tshape=INT32)


def _set_attr(node: node_def_pb2.NodeDef, key: str, value: object) -> None:
    attr = node.attr[key]
    if key in DTYPE_KEYS:
        attr.type = int(value)  # type: ignore[call-overload]
    elif isinstance(value, bool):
        attr.b = value
    elif isinstance(value, int):
        attr.i = value
    elif isinstance(value, float):
        attr.f = value
    elif isinstance(value, str):
        attr.s = value.encode()
    elif isinstance(value, bytes):
        attr.s = value
    elif isinstance(value, (list, tuple)):
        if all(isinstance(v, int) for v in value):
            attr.list.i.extend(value)
        else:
            attr.list.f.extend(value)
    else:
        raise TypeError(f"attr {key}: {type(value).__name__}")


DTYPE_KEYS = frozenset({"Tperm", "Tshape", "Tidx", "Tpaddings", "Tmultiples", "Tlen", "Index", "out_type", "Tindices",
                        "Taxis", "Tparams", "DstT", "SrcT", "index_type"})
